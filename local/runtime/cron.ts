/**
 * EventBridge / EventBridge Scheduler schedule expressions: `rate(5 minutes)`, six-field
 * `cron(minutes hours day-of-month month day-of-week year)` and Scheduler's `at(2030-01-01T10:00:00)`.
 */

export class ScheduleExpressionError extends Error {
  readonly expression: string;
  constructor(expression: string, reason: string) {
    super(
      `Invalid schedule expression "${expression}": ${reason}. Expected rate(<n> minute|minutes|hour|hours|day|days), ` +
        'cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>) or at(yyyy-mm-ddThh:mm:ss).',
    );
    this.name = 'ScheduleExpressionError';
    this.expression = expression;
  }
}

export interface Schedule {
  readonly expression: string;
  /** The first fire time strictly after `afterMs` (epoch ms), or undefined if there is none. */
  next(afterMs: number): number | undefined;
}

const UNIT_MS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/**
 * Parses a schedule expression. `timezone` (IANA name, Scheduler's ScheduleExpressionTimezone) applies
 * to cron and at; rate schedules run every period from `anchorMs` (when the schedule was created).
 */
export function parseSchedule(
  expression: string,
  opts: { timezone?: string; anchorMs?: number } = {},
): Schedule {
  const trimmed = expression.trim();
  const rate = /^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$/.exec(trimmed);
  if (rate) {
    const value = Number(rate[1]);
    const unit = (rate[2] as string).replace(/s$/, '');
    if (value <= 0) throw new ScheduleExpressionError(expression, 'the rate must be positive');
    const period = value * (UNIT_MS[unit] as number);
    const anchor = opts.anchorMs ?? 0;
    return {
      expression,
      next: (after) => anchor + (Math.floor((after - anchor) / period) + 1) * period,
    };
  }
  const at = /^at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)$/.exec(trimmed);
  if (at) {
    const [y, mo, d, h, mi, s] = at.slice(1).map(Number) as [number, number, number, number, number, number];
    const when = wallToInstant(Date.UTC(y, mo - 1, d, h, mi, s), opts.timezone);
    return { expression, next: (after) => (when > after ? when : undefined) };
  }
  const cron = /^cron\((.*)\)$/.exec(trimmed);
  if (cron) return cronSchedule(expression, (cron[1] as string).trim().split(/\s+/), opts.timezone);
  throw new ScheduleExpressionError(expression, 'unknown form');
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

function cronSchedule(expression: string, fields: string[], timezone: string | undefined): Schedule {
  if (fields.length !== 6)
    throw new ScheduleExpressionError(expression, `cron needs 6 fields, got ${fields.length}`);
  const [minF, hourF, domF, monF, dowF, yearF] = fields as [string, string, string, string, string, string];
  if ((domF === '?') === (dowF === '?')) {
    throw new ScheduleExpressionError(expression, 'exactly one of day-of-month and day-of-week must be "?"');
  }
  const fail = (reason: string): never => {
    throw new ScheduleExpressionError(expression, reason);
  };
  const minutes = valueSet(minF, 0, 59, [], fail);
  const hours = valueSet(hourF, 0, 23, [], fail);
  const months = valueSet(monF, 1, 12, MONTHS, fail);
  const years = valueSet(yearF, 1970, 2199, [], fail);
  const dayMatches = domF === '?' ? dayOfWeekMatcher(dowF, fail) : dayOfMonthMatcher(domF, fail);

  const nextWall = (afterWall: number): number | undefined => {
    // Wall-clock time is handled as UTC milliseconds; start at the next whole minute.
    const t = new Date(Math.floor(afterWall / 60_000) * 60_000 + 60_000);
    for (let guard = 0; guard < 100_000; guard++) {
      const year = t.getUTCFullYear();
      if (year > 2199) return undefined;
      if (!years.has(year)) {
        t.setUTCFullYear(year + 1, 0, 1);
        t.setUTCHours(0, 0, 0, 0);
        continue;
      }
      if (!months.has(t.getUTCMonth() + 1)) {
        t.setUTCMonth(t.getUTCMonth() + 1, 1);
        t.setUTCHours(0, 0, 0, 0);
        continue;
      }
      if (!dayMatches(year, t.getUTCMonth(), t.getUTCDate())) {
        t.setUTCDate(t.getUTCDate() + 1);
        t.setUTCHours(0, 0, 0, 0);
        continue;
      }
      if (!hours.has(t.getUTCHours())) {
        t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
        continue;
      }
      if (!minutes.has(t.getUTCMinutes())) {
        t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
        continue;
      }
      return t.getTime();
    }
    return undefined;
  };

  return {
    expression,
    next(after) {
      // Search in wall-clock time of the zone, then convert back; skip results not after `after` (DST).
      let wall = instantToWall(after, timezone);
      for (let i = 0; i < 4; i++) {
        const candidate = nextWall(wall);
        if (candidate === undefined) return undefined;
        const instant = wallToInstant(candidate, timezone);
        if (instant > after) return instant;
        wall = candidate;
      }
      return undefined;
    },
  };
}

function valueSet(
  field: string,
  min: number,
  max: number,
  names: readonly string[],
  fail: (r: string) => never,
): Set<number> {
  const out = new Set<number>();
  const parse = (token: string): number => {
    const index = names.indexOf(token.toUpperCase());
    const value = index >= 0 ? index + min : Number(token);
    if (!Number.isInteger(value) || value < min || value > max) fail(`"${token}" is outside ${min}-${max}`);
    return value;
  };
  for (const part of field.split(',')) {
    const [range, stepText] = part.split('/') as [string, string | undefined];
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step <= 0) fail(`bad step in "${part}"`);
    let from: number;
    let to: number;
    if (range === '*') {
      from = min;
      to = max;
    } else if (range.includes('-')) {
      const [a, b] = range.split('-') as [string, string];
      from = parse(a);
      to = parse(b);
    } else {
      from = parse(range);
      to = stepText === undefined ? from : max;
    }
    for (let v = from; v <= to; v += step) out.add(v);
  }
  return out;
}

type DayMatcher = (year: number, month0: number, day: number) => boolean;

function daysInMonth(year: number, month0: number): number {
  return new Date(Date.UTC(year, month0 + 1, 0)).getUTCDate();
}

function dayOfMonthMatcher(field: string, fail: (r: string) => never): DayMatcher {
  if (field === '*') return () => true;
  if (field === 'L') return (y, m, d) => d === daysInMonth(y, m);
  if (field === 'LW') {
    return (y, m, d) => {
      let last = daysInMonth(y, m);
      while (isWeekend(y, m, last)) last--;
      return d === last;
    };
  }
  const weekday = /^(\d{1,2})W$/.exec(field);
  if (weekday) {
    const target = Number(weekday[1]);
    return (y, m, d) => d === nearestWeekday(y, m, Math.min(target, daysInMonth(y, m)));
  }
  const days = valueSet(field, 1, 31, [], fail);
  return (_y, _m, d) => days.has(d);
}

function dayOfWeekMatcher(field: string, fail: (r: string) => never): DayMatcher {
  const dow = (y: number, m: number, d: number): number => new Date(Date.UTC(y, m, d)).getUTCDay() + 1; // 1 = SUN
  const parseDay = (token: string): number => {
    const index = DAYS.indexOf(token.toUpperCase());
    const value = index >= 0 ? index + 1 : Number(token);
    if (!Number.isInteger(value) || value < 1 || value > 7)
      fail(`"${token}" is not a day of week (1-7 or SUN-SAT)`);
    return value;
  };
  if (field === '*') return () => true;
  const last = /^(\w+)L$/.exec(field);
  if (last) {
    const target = parseDay(last[1] as string);
    return (y, m, d) => dow(y, m, d) === target && d + 7 > daysInMonth(y, m);
  }
  const nth = /^(\w+)#([1-5])$/.exec(field);
  if (nth) {
    const target = parseDay(nth[1] as string);
    const n = Number(nth[2]);
    return (y, m, d) => dow(y, m, d) === target && Math.ceil(d / 7) === n;
  }
  if (field === 'L') return (y, m, d) => dow(y, m, d) === 7;
  const days = valueSet(field, 1, 7, DAYS, fail);
  return (y, m, d) => days.has(dow(y, m, d));
}

function isWeekend(y: number, m: number, d: number): boolean {
  const day = new Date(Date.UTC(y, m, d)).getUTCDay();
  return day === 0 || day === 6;
}

function nearestWeekday(y: number, m: number, d: number): number {
  const day = new Date(Date.UTC(y, m, d)).getUTCDay();
  if (day === 6) return d === 1 ? 3 : d - 1;
  if (day === 0) return d === daysInMonth(y, m) ? d - 2 : d + 1;
  return d;
}

/** Wall-clock time of `instant` in `timezone`, as UTC milliseconds. */
function instantToWall(instant: number, timezone: string | undefined): number {
  return instant + offsetMs(instant, timezone);
}

/** The instant at which the clocks of `timezone` show `wall` (UTC-encoded). */
function wallToInstant(wall: number, timezone: string | undefined): number {
  if (!timezone || timezone === 'UTC') return wall;
  let instant = wall - offsetMs(wall, timezone);
  instant = wall - offsetMs(instant, timezone);
  return instant;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function offsetMs(instant: number, timezone: string | undefined): number {
  if (!timezone || timezone === 'UTC') return 0;
  let format = formatters.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timezone, format);
  }
  const parts: Record<string, number> = {};
  for (const p of format.formatToParts(new Date(instant)))
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const wall = Date.UTC(
    parts.year as number,
    (parts.month as number) - 1,
    parts.day as number,
    parts.hour as number,
    parts.minute as number,
    parts.second as number,
  );
  return wall - Math.floor(instant / 1000) * 1000;
}
