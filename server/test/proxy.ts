import { createServer, type Server, Socket } from 'node:net';

/** A TCP proxy to PostgreSQL that the test can cut (refuse and drop connections), restore, or hold. */
export class Proxy {
  private server: Server | null = null;
  private sockets = new Set<Socket>();
  private held = false;
  private silent = false;
  private waiting: (() => void)[] = [];
  port = 0;
  constructor(private target: { host: string; port: number }) {}

  async up(): Promise<void> {
    this.server = createServer((client) => {
      if (this.silent) {
        // Accepted, then never a byte back: what a blackholed database looks like to its client.
        this.sockets.add(client);
        client.on('error', () => client.destroy()).on('close', () => this.sockets.delete(client));
        return;
      }
      const upstream = new Socket();
      this.sockets.add(client).add(upstream);
      const forget = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', forget).on('close', forget);
      upstream.on('error', forget).on('close', forget);
      upstream.connect(this.target.port, this.target.host);
      client.on('data', (chunk) => {
        if (!this.held) upstream.write(chunk);
        else this.waiting.push(() => upstream.write(chunk));
      });
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server!.address() as { port: number }).port;
  }

  /** Refuses new connections and drops the open ones: the database is unreachable. */
  async down(): Promise<void> {
    const closed = new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.server = null;
    await closed;
  }

  /** Drops the open connections and accepts new ones without ever answering, until restore(). */
  silence() {
    this.silent = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  restore() {
    this.silent = false;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  hold() {
    this.held = true;
  }

  release() {
    this.held = false;
    for (const w of this.waiting.splice(0)) w();
  }
}
