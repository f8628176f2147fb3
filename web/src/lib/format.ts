import { clock } from './clock';

const dateFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export function date(iso: string | null | undefined, fallback = '—'): string {
  return iso ? dateFmt.format(new Date(iso)) : fallback;
}

export function dateTime(iso: string | null | undefined, fallback = '—'): string {
  return iso ? dateTimeFmt.format(new Date(iso)) : fallback;
}

/**
 * The last second of a day picked in an `<input type="date">` (YYYY-MM-DD), in the user's time zone:
 * the console shows dates in that zone, so the expiry shown is the day picked, wherever the user is.
 */
export function endOfDay(day: string): Date {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(y ?? NaN, (m ?? NaN) - 1, d ?? NaN, 23, 59, 59);
}

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 86_400],
  ['month', 30 * 86_400],
  ['day', 86_400],
  ['hour', 3_600],
  ['minute', 60],
  ['second', 1],
];

/** "3 minutes ago", "in 2 days"; shown in a template, it is brought up to date as time passes (clock.ts). */
export function relative(iso: string | null | undefined, now = clock.now, fallback = 'never'): string {
  if (!iso) return fallback;
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  // A moment ago is "just now"; a moment ahead (a retry, a lease's end) is counted, not said as past. A
  // few seconds ahead stay "just now": a browser clock a little behind the server's would otherwise show
  // an event that has just happened as "in 2 seconds".
  if (seconds > 5 && seconds < 45) return relFmt.format(seconds, 'second');
  if (Math.abs(seconds) < 45) return 'just now';
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return relFmt.format(Math.round(seconds / size), unit);
  }
  return 'just now';
}

/** ENUM_VALUE -> "Enum value". */
export function label(value: string | null | undefined): string {
  if (!value) return '—';
  const words = value.toLowerCase().replaceAll('_', ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function count(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}

/** "N / M" activation progress; M is "∞" when uncapped. */
export function progress(used: number, max: number | null | undefined): string {
  return `${used} / ${max ?? '∞'}`;
}

/**
 * What is left of a license's activations, and its goodwill (the soft limit past the cap): whether the
 * goodwill is still ahead, available, or in use. Devices over the cap and its goodwill (a cap lowered
 * below the devices already holding it) are said too.
 */
export function activationCaption(used: number, max: number | null | undefined, goodwill: number): string {
  if (max === null || max === undefined) return 'No cap';
  const activations = (n: number) => count(n, 'goodwill activation');
  if (used < max) return `${max - used} left${goodwill ? ` · ${activations(goodwill)} beyond the cap` : ''}`;
  if (used === max) return `None left${goodwill ? ` · ${activations(goodwill)} available` : ''}`;
  const inGoodwill = Math.min(used - max, goodwill);
  const over = used - max - inGoodwill;
  const parts = goodwill ? [`${activations(inGoodwill)} in use`, goodwill > inGoodwill ? `${goodwill - inGoodwill} more available` : 'none left'] : [];
  if (over) parts.push(`${over} over the ${goodwill ? 'goodwill' : 'cap'}`);
  return parts.join(' · ');
}

export function daysUntil(iso: string | null | undefined, now = clock.now): number | null {
  if (!iso) return null;
  return Math.ceil((new Date(iso).getTime() - now) / 86_400_000);
}

/** Seconds as the two largest units: "45 s", "12 min", "3 h 20 min", "2 d 5 h". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const parts: [number, string][] = [
    [Math.floor(s / 86_400), 'd'],
    [Math.floor((s % 86_400) / 3_600), 'h'],
    [Math.floor((s % 3_600) / 60), 'min'],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  return parts
    .slice(first, first + 2)
    .filter(([n]) => n > 0)
    .map(([n, unit]) => `${n} ${unit}`)
    .join(' ');
}
