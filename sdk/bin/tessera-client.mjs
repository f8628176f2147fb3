#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader (the SDK ships as TypeScript source in this workspace).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
