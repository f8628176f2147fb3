import { sveltekit } from '@sveltejs/kit/vite';
import { svelteTesting } from '@testing-library/svelte/vite';
import { defineConfig } from 'vitest/config';

const api = process.env.TESSERA_API ?? 'http://localhost:4000';

export default defineConfig({
  plugins: [sveltekit(), svelteTesting()],
  server: {
    // `pnpm dev` talks to a running API; the session cookie stays same-origin through the proxy.
    proxy: { '/graphql': { target: api, ws: true } },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'jsdom',
    setupFiles: ['./vitest.setup.ts'],
  },
});
