// Child process of storage.test.ts: `tsx state-writer.ts <file> <count>` adds 1 to the shared counter
// of the state file `count` times, one read-modify-write each, then prints "done".
import { fileStorage } from '../src/storage.ts';

const [file, count] = process.argv.slice(2) as [string, string];
const storage = fileStorage(file);
for (let i = 0; i < Number(count); i++) {
  await storage.update!((s) => ({ ...s, offlineUsage: { n: (s.offlineUsage?.n ?? 0) + 1 } }));
}
process.stdout.write('done\n');
