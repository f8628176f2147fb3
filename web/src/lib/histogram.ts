const formats = new Map<string, Intl.DateTimeFormat>();

/** The calendar day of `at` in `timeZone`, as YYYY-MM-DD. */
export function dayIn(at: Date, timeZone: string): string {
  let f = formats.get(timeZone);
  if (!f) formats.set(timeZone, (f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })));
  // en-CA formats as YYYY-MM-DD; the parts keep it so whatever the runtime's locale data.
  const parts = Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}`;
}

/** The browser's IANA time zone (UTC when it has none). */
export function browserTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/**
 * Bars for the last `days` calendar days of `timeZone`, today last, from counts per YYYY-MM-DD (days
 * missing count 0), labelled "MM-DD".
 */
export function dayBars(counts: Readonly<Record<string, number>>, days: number, timeZone: string, now = new Date()): { label: string; value: number; title: string }[] {
  const today = Date.parse(`${dayIn(now, timeZone)}T00:00:00Z`);
  return Array.from({ length: days }, (_, i) => {
    const date = new Date(today - (days - 1 - i) * 86_400_000).toISOString().slice(0, 10);
    const value = counts[date] ?? 0;
    const title = `${new Date(`${date}T00:00:00Z`).toLocaleDateString(undefined, { timeZone: 'UTC', weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' })}: ${value} activation${value === 1 ? '' : 's'}`;
    return { label: date.slice(5), value, title };
  });
}
