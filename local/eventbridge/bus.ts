/**
 * A local EventBridge: an HTTP endpoint that speaks enough of the AWS JSON 1.1 protocol for
 * `@aws-sdk/client-eventbridge`'s `PutEventsCommand`, plus a programmatic API (buses, rules,
 * targets) for the local runtime. Matched events are delivered asynchronously, after PutEvents
 * has answered, with the target's retry policy and dead-letter queue applied, as AWS does.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CompiledPattern, compilePattern } from '../../functions/patterns/event-pattern.ts';
import {
  LocalEventBridgeConfigError,
  LocalEventBridgeNotStartedError,
  PutEventsValidationError,
} from './errors.ts';
import { compileInput } from './target-input.ts';

/** The event as EventBridge hands it to rules and targets. */
export interface EventBridgeEvent {
  version: '0';
  id: string;
  'detail-type': string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: Record<string, unknown>;
}

export interface LocalTarget {
  /** Unique within the rule. */
  id: string;
  /** What `deliver` should invoke (queue, topic, function, ... ARN). */
  arn: string;
  /** Constant JSON text sent instead of the event (AWS `Input`). */
  input?: string;
  /** JSONPath-lite (`$`, `$.detail.x`, `$.resources[0]`) selecting what is sent (AWS `InputPath`). */
  inputPath?: string;
  /** AWS `InputTransformer`: `<name>` placeholders in the template, filled from the paths map. */
  inputTransformer?: { inputPathsMap?: Record<string, string>; inputTemplate: string };
  /** AWS defaults: 185 retries, 86,400 s. */
  retryPolicy?: { maximumRetryAttempts?: number; maximumEventAgeInSeconds?: number };
  /** Where the event goes once retries are exhausted; needs the `deliverToDeadLetter` option. */
  deadLetterArn?: string;
}

export interface LocalRule {
  name: string;
  /** @default 'default' */
  busName?: string;
  /** Object or JSON text; validated like PutRule (throws `InvalidEventPatternError`). */
  eventPattern: unknown;
  targets: LocalTarget[];
}

export interface DeliveryContext {
  ruleName: string;
  ruleArn: string;
  busName: string;
  targetId: string;
  /** The matched event, before InputPath / InputTransformer. */
  event: EventBridgeEvent;
  /** 1 for the first try. */
  attempt: number;
}

export interface LocalEventBridgeOptions {
  region: string;
  accountId: string;
  /**
   * Invokes a target. `input` is what the target receives: the event, or the result of
   * Input / InputPath / InputTransformer (a JSON value, or a string when the template does not
   * produce JSON). Reject to fail the attempt; it is retried per the target's retry policy.
   */
  deliver: (target: LocalTarget, input: unknown, context: DeliveryContext) => Promise<void>;
  /** Receives the original event when a target with `deadLetterArn` has exhausted its retries. */
  deliverToDeadLetter?: (
    deadLetterArn: string,
    event: EventBridgeEvent,
    error: unknown,
    context: DeliveryContext,
  ) => Promise<void>;
  /** Called on every failed delivery attempt (for logging). */
  onDeliveryError?: (error: unknown, context: DeliveryContext) => void;
  /** @default 0 (a free port) */
  port?: number;
  /** Limit on one PutEvents entry, computed as AWS documents. @default 1 MiB (raised from 256 KB in 2026) */
  maxEntryBytes?: number;
  /** Exponential backoff between retries: base × 2^(retry−1), capped. @default { baseDelayMs: 50, maxDelayMs: 5000 } */
  retryBackoff?: { baseDelayMs?: number; maxDelayMs?: number };
}

/** Per-rule counters, summed over the rule's targets; named after EventBridge's CloudWatch metrics. */
export interface RuleMetrics {
  /** Events that matched the rule (`MatchedEvents`). */
  matched: number;
  /** Target invocations that reached a final outcome, success or failure (`Invocations`). */
  invocations: number;
  /** Invocations that succeeded, possibly after retries. */
  delivered: number;
  /** Invocations that failed permanently (`FailedInvocations`); includes dead-lettered ones. */
  failed: number;
  /** Retry attempts (`RetryInvocationAttempts`). */
  retried: number;
  /** Events handed to the dead-letter callback (`InvocationsSentToDlq`). */
  deadLettered: number;
  /** Dead-letter callbacks that threw (`InvocationsFailedToBeSentToDlq`). */
  deadLetterFailed: number;
}

export interface LocalEventBridgeMetrics {
  /** Counters of one rule (zeros for an unknown rule). */
  forRule(ruleName: string, busName?: string): RuleMetrics;
  /** Counters of every rule that has been added. */
  snapshot(): Array<RuleMetrics & { ruleName: string; busName: string }>;
}

/** One PutEvents entry, as the API (and the SDK's JSON) carries it. */
export interface PutEventsEntry {
  Source?: string;
  DetailType?: string;
  Detail?: string;
  Resources?: string[];
  /** Epoch seconds (as the SDK sends it), an ISO string, or a Date. */
  Time?: number | string | Date;
  EventBusName?: string;
  TraceHeader?: string;
}

export type PutEventsResultEntry = { EventId: string } | { ErrorCode: string; ErrorMessage: string };

export interface PutEventsResult {
  FailedEntryCount: number;
  Entries: PutEventsResultEntry[];
}

export interface LocalEventBridge {
  /** `http://127.0.0.1:<port>`; use as the client's `endpoint` or `AWS_ENDPOINT_URL_EVENTBRIDGE`. */
  readonly url: string;
  start(): Promise<void>;
  /** Closes the server, cancels pending retries and waits for running deliveries. */
  stop(): Promise<void>;
  /** Creates a bus (idempotent). The `default` bus always exists. */
  addBus(name: string): { name: string; arn: string };
  /** Creates or replaces a rule (PutRule + PutTargets). */
  addRule(rule: LocalRule): { arn: string };
  /** PutEvents without HTTP. Throws `PutEventsValidationError` where AWS answers ValidationException. */
  putEvents(entries: readonly PutEventsEntry[]): PutEventsResult;
  /** Resolves once no delivery (including retries and dead-lettering) is in progress. */
  idle(): Promise<void>;
  readonly metrics: LocalEventBridgeMetrics;
}

export {
  LocalEventBridgeConfigError,
  LocalEventBridgeNotStartedError,
  PutEventsValidationError,
} from './errors.ts';

const MAX_ENTRIES = 10;
const DEFAULT_MAX_ENTRY_BYTES = 1024 * 1024;
/** Ten entries at the entry limit plus JSON overhead; beyond this the body is refused unread. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const DEFAULT_RETRIES = 185;
const DEFAULT_MAX_AGE_SECONDS = 86_400;

interface CompiledTarget {
  readonly target: LocalTarget;
  readonly makeInput: (event: EventBridgeEvent, rule: RuleState, ingestedAt: number) => unknown;
  readonly maxRetries: number;
  readonly maxAgeMs: number;
}

interface RuleState {
  readonly name: string;
  readonly busName: string;
  readonly arn: string;
  readonly pattern: CompiledPattern;
  readonly targets: readonly CompiledTarget[];
}

export function createLocalEventBridge(options: LocalEventBridgeOptions): LocalEventBridge {
  const { region, accountId } = options;
  const maxEntryBytes = options.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
  const baseDelayMs = options.retryBackoff?.baseDelayMs ?? 50;
  const maxDelayMs = options.retryBackoff?.maxDelayMs ?? 5000;

  const buses = new Map<string, Map<string, RuleState>>([['default', new Map()]]);
  const counters = new Map<string, RuleMetrics & { ruleName: string; busName: string }>();
  const inFlight = new Set<Promise<void>>();
  const sleepers = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  let server: Server | undefined;
  let url: string | undefined;
  let stopping = false;

  const busArn = (name: string) => `arn:aws:events:${region}:${accountId}:event-bus/${name}`;
  const metricsKey = (busName: string, ruleName: string) => `${busName}\u0000${ruleName}`;

  function countersFor(rule: RuleState): RuleMetrics {
    const key = metricsKey(rule.busName, rule.name);
    let entry = counters.get(key);
    if (!entry) {
      entry = { ruleName: rule.name, busName: rule.busName, ...zeroMetrics() };
      counters.set(key, entry);
    }
    return entry;
  }

  function addBus(name: string): { name: string; arn: string } {
    if (!/^[A-Za-z0-9._\-/]{1,256}$/.test(name)) {
      throw new LocalEventBridgeConfigError(
        `bus "${name}"`,
        'name must be 1-256 characters of A-Z a-z 0-9 . _ - /',
      );
    }
    if (!buses.has(name)) buses.set(name, new Map());
    return { name, arn: busArn(name) };
  }

  function addRule(rule: LocalRule): { arn: string } {
    const busName = rule.busName ?? 'default';
    const subject = `rule "${rule.name}" on bus "${busName}"`;
    const rules = buses.get(busName);
    if (!rules)
      throw new LocalEventBridgeConfigError(subject, `bus "${busName}" does not exist; call addBus first`);
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(rule.name)) {
      throw new LocalEventBridgeConfigError(subject, 'name must be 1-64 characters of A-Z a-z 0-9 . _ -');
    }
    const pattern = compilePattern(rule.eventPattern);
    const ids = new Set<string>();
    const targets = rule.targets.map((target) => {
      if (ids.has(target.id))
        throw new LocalEventBridgeConfigError(subject, `duplicate target id "${target.id}"`);
      ids.add(target.id);
      return compileTarget(target, `${subject}, target "${target.id}"`);
    });
    const arn = `arn:aws:events:${region}:${accountId}:rule/${busName === 'default' ? '' : `${busName}/`}${rule.name}`;
    const state: RuleState = { name: rule.name, busName, arn, pattern, targets };
    rules.set(rule.name, state);
    countersFor(state);
    return { arn };
  }

  function compileTarget(target: LocalTarget, subject: string): CompiledTarget {
    const ways = [target.input, target.inputPath, target.inputTransformer].filter((x) => x !== undefined);
    if (ways.length > 1) {
      throw new LocalEventBridgeConfigError(subject, 'use only one of input, inputPath and inputTransformer');
    }
    const maxRetries = target.retryPolicy?.maximumRetryAttempts ?? DEFAULT_RETRIES;
    const maxAge = target.retryPolicy?.maximumEventAgeInSeconds ?? DEFAULT_MAX_AGE_SECONDS;
    if (!Number.isInteger(maxRetries) || maxRetries < 0 || maxRetries > 185) {
      throw new LocalEventBridgeConfigError(
        subject,
        'retryPolicy.maximumRetryAttempts must be an integer 0-185',
      );
    }
    if (!Number.isInteger(maxAge) || maxAge < 60 || maxAge > 86_400) {
      throw new LocalEventBridgeConfigError(
        subject,
        'retryPolicy.maximumEventAgeInSeconds must be an integer 60-86400',
      );
    }
    if (target.deadLetterArn !== undefined && !options.deliverToDeadLetter) {
      throw new LocalEventBridgeConfigError(
        subject,
        'has a deadLetterArn but no deliverToDeadLetter option was given',
      );
    }
    return { target, makeInput: compileInput(target, subject), maxRetries, maxAgeMs: maxAge * 1000 };
  }

  function putEvents(entries: readonly PutEventsEntry[]): PutEventsResult {
    if (!Array.isArray(entries)) throw missingEntries();
    if (entries.length < 1 || entries.length > MAX_ENTRIES) {
      throw new PutEventsValidationError(
        `1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length ` +
          `${entries.length < 1 ? 'greater than or equal to 1' : `less than or equal to ${MAX_ENTRIES}`} ` +
          `(got ${entries.length}); split the batch into calls of at most ${MAX_ENTRIES} entries`,
      );
    }
    const results = entries.map((entry) => putOne(entry));
    return { FailedEntryCount: results.filter((r) => 'ErrorCode' in r).length, Entries: results };
  }

  function putOne(entry: PutEventsEntry): PutEventsResultEntry {
    const checked = validateEntry(entry, maxEntryBytes);
    if ('ErrorCode' in checked) return checked;
    const busName = resolveBusName(entry.EventBusName);
    if (busName === undefined) {
      return invalid(
        'EventBusName',
        `${String(entry.EventBusName)} is not an event bus name or event bus ARN.`,
      );
    }
    const rules = buses.get(busName);
    if (!rules) {
      // Real AWS may accept such entries and drop them (aws/aws-sdk#186); failing is more useful locally.
      return {
        ErrorCode: 'ResourceNotFoundException',
        ErrorMessage: `Event bus ${busName} does not exist. Create it with addBus("${busName}").`,
      };
    }
    const ingestedAt = Date.now();
    const event: EventBridgeEvent = {
      version: '0',
      id: randomUUID(),
      'detail-type': checked.detailType,
      source: checked.source,
      account: accountId,
      time: formatTime(checked.time ?? new Date(ingestedAt)),
      region,
      resources: checked.resources,
      detail: checked.detail,
    };
    for (const rule of rules.values()) {
      if (!rule.pattern.matches(event)) continue;
      countersFor(rule).matched++;
      for (const target of rule.targets) track(deliverWithRetry(rule, target, event, ingestedAt));
    }
    return { EventId: event.id };
  }

  function track(work: Promise<void>): void {
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  }

  async function deliverWithRetry(
    rule: RuleState,
    compiled: CompiledTarget,
    event: EventBridgeEvent,
    ingestedAt: number,
  ): Promise<void> {
    // PutEvents answers first; delivery starts on a later turn of the event loop.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const metrics = countersFor(rule);
    const context = (attempt: number): DeliveryContext => ({
      ruleName: rule.name,
      ruleArn: rule.arn,
      busName: rule.busName,
      targetId: compiled.target.id,
      event,
      attempt,
    });
    let lastError: unknown;
    let attempt = 0;
    for (;;) {
      if (stopping) return;
      attempt++;
      try {
        const input = compiled.makeInput(event, rule, ingestedAt);
        await options.deliver(compiled.target, input, context(attempt));
        metrics.invocations++;
        metrics.delivered++;
        return;
      } catch (error) {
        lastError = error;
        options.onDeliveryError?.(error, context(attempt));
        // AWS does not retry some failures (a target policy that refuses EventBridge): straight to the DLQ.
        if ((error as { retryable?: unknown } | null)?.retryable === false) break;
      }
      const delay = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
      const retriesLeft = attempt - 1 < compiled.maxRetries;
      const ageAllows = Date.now() + delay - ingestedAt < compiled.maxAgeMs;
      if (!retriesLeft || !ageAllows) break;
      metrics.retried++;
      await sleep(delay);
    }
    metrics.invocations++;
    metrics.failed++;
    const dlq = compiled.target.deadLetterArn;
    if (dlq !== undefined && options.deliverToDeadLetter) {
      try {
        await options.deliverToDeadLetter(dlq, event, lastError, context(attempt));
        metrics.deadLettered++;
      } catch {
        metrics.deadLetterFailed++;
      }
    }
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const sleeper = {
        timer: setTimeout(() => {
          sleepers.delete(sleeper);
          resolve();
        }, ms),
        wake: resolve,
      };
      sleepers.add(sleeper);
    });
  }

  async function idle(): Promise<void> {
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      return sendError(
        res,
        405,
        'UnknownOperationException',
        'Only POST requests of the AWS JSON 1.1 protocol are served.',
      );
    }
    const target = header(req, 'x-amz-target');
    const body = await readBody(req);
    if (body === undefined) {
      return sendError(res, 413, 'ValidationException', `Request body is over ${MAX_BODY_BYTES} bytes.`);
    }
    if (target !== 'AWSEvents.PutEvents') {
      return sendError(
        res,
        400,
        'UnknownOperationException',
        `Operation ${target ?? '(no X-Amz-Target header)'} is not supported by the local EventBridge; only AWSEvents.PutEvents is.`,
      );
    }
    let request: unknown;
    try {
      request = JSON.parse(body.toString('utf8') || '{}');
    } catch {
      return sendError(res, 400, 'SerializationException', 'Request body is not valid JSON.');
    }
    const entries = isRecord(request) ? request.Entries : undefined;
    try {
      if (!Array.isArray(entries)) throw missingEntries();
      send(res, 200, putEvents(entries.map(toEntry)));
    } catch (error) {
      if (error instanceof PutEventsValidationError) return sendError(res, 400, error.code, error.message);
      throw error;
    }
  }

  return {
    get url(): string {
      if (url === undefined) throw new LocalEventBridgeNotStartedError();
      return url;
    },
    async start() {
      if (server) return;
      stopping = false;
      const created = createServer((req, res) => {
        handle(req, res).catch((error: unknown) => {
          if (!res.headersSent) {
            sendError(res, 500, 'InternalException', `Local EventBridge failed: ${describeError(error)}`);
          } else {
            res.destroy();
          }
        });
      });
      await new Promise<void>((resolve, reject) => {
        created.once('error', reject);
        created.listen(options.port ?? 0, '127.0.0.1', () => {
          created.off('error', reject);
          resolve();
        });
      });
      server = created;
      url = `http://127.0.0.1:${(created.address() as AddressInfo).port}`;
    },
    async stop() {
      stopping = true;
      for (const sleeper of sleepers) {
        clearTimeout(sleeper.timer);
        sleeper.wake();
      }
      sleepers.clear();
      const closing = server;
      server = undefined;
      url = undefined;
      if (closing) {
        await new Promise<void>((resolve) => {
          closing.close(() => resolve());
          closing.closeAllConnections();
        });
      }
      await idle();
    },
    addBus,
    addRule,
    putEvents,
    idle,
    metrics: {
      forRule(ruleName: string, busName = 'default'): RuleMetrics {
        const entry = counters.get(metricsKey(busName, ruleName));
        return entry ? pickMetrics(entry) : zeroMetrics();
      },
      snapshot() {
        return [...counters.values()].map((entry) => ({
          ruleName: entry.ruleName,
          busName: entry.busName,
          ...pickMetrics(entry),
        }));
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Entry validation and event construction
// ---------------------------------------------------------------------------------------------

interface ValidEntry {
  source: string;
  detailType: string;
  detail: Record<string, unknown>;
  resources: string[];
  time: Date | undefined;
}

type EntryError = { ErrorCode: string; ErrorMessage: string };

function validateEntry(entry: PutEventsEntry, maxEntryBytes: number): ValidEntry | EntryError {
  if (typeof entry.Source !== 'string' || entry.Source === '') {
    return invalid('Source', 'Source is a required argument.');
  }
  if (typeof entry.DetailType !== 'string' || entry.DetailType === '') {
    return invalid('DetailType', 'DetailType is a required argument.');
  }
  if (typeof entry.Detail !== 'string' || entry.Detail === '') {
    return invalid('Detail', 'Detail is a required argument.');
  }
  let detail: unknown;
  try {
    detail = JSON.parse(entry.Detail);
  } catch {
    return { ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed: it is not valid JSON.' };
  }
  if (!isRecord(detail)) {
    return { ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed: it must be a JSON object.' };
  }
  const resources = entry.Resources ?? [];
  if (!Array.isArray(resources) || !resources.every((r) => typeof r === 'string')) {
    return invalid('Resources', 'Resources must be a list of strings.');
  }
  let time: Date | undefined;
  if (entry.Time !== undefined) {
    time =
      entry.Time instanceof Date
        ? entry.Time
        : new Date(typeof entry.Time === 'number' ? entry.Time * 1000 : entry.Time);
    if (Number.isNaN(time.getTime())) return invalid('Time', 'Time is not a valid timestamp.');
  }
  if (entry.Source.startsWith('aws.')) {
    return {
      ErrorCode: 'NotAuthorizedForSourceException',
      ErrorMessage: `Not authorized for the source ${entry.Source}: sources starting with "aws." are reserved for AWS services.`,
    };
  }
  const size = entrySize(entry, resources);
  if (size > maxEntryBytes) {
    return {
      ErrorCode: 'InvalidArgument',
      ErrorMessage:
        `Entry size ${size} bytes is over the ${maxEntryBytes}-byte PutEvents entry limit. ` +
        'Store the payload elsewhere (e.g. S3) and put a reference in Detail.',
    };
  }
  return { source: entry.Source, detailType: entry.DetailType, detail, resources, time };
}

/** Entry size as AWS documents it ("Calculating PutEvents event entry size"). */
function entrySize(entry: PutEventsEntry, resources: string[]): number {
  let size = entry.Time !== undefined ? 14 : 0;
  size += Buffer.byteLength(entry.Source ?? '') + Buffer.byteLength(entry.DetailType ?? '');
  size += Buffer.byteLength(entry.Detail ?? '');
  for (const resource of resources) size += Buffer.byteLength(resource);
  return size;
}

function missingEntries(): PutEventsValidationError {
  return new PutEventsValidationError(
    "1 validation error detected: Value null at 'entries' failed to satisfy constraint: Member must not be null",
  );
}

function invalid(parameter: string, reason: string): EntryError {
  return {
    ErrorCode: 'InvalidArgument',
    ErrorMessage: `Parameter ${parameter} is not valid. Reason: ${reason}`,
  };
}

function resolveBusName(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return 'default';
  if (typeof value !== 'string') return undefined;
  if (!value.startsWith('arn:')) return value;
  const match = /^arn:aws[a-z-]*:events:[^:]*:\d*:event-bus\/(.+)$/.exec(value);
  return match?.[1];
}

/** `2017-12-22T18:43:48Z`: EventBridge's `time` has no fractional seconds. */
function formatTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function toEntry(value: unknown): PutEventsEntry {
  return isRecord(value) ? (value as PutEventsEntry) : {};
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------------------------

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function send(res: ServerResponse, status: number, body: unknown, errorType?: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
    ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
  });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, type: string, message: string): void {
  send(res, status, { __type: type, message }, type);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function zeroMetrics(): RuleMetrics {
  return {
    matched: 0,
    invocations: 0,
    delivered: 0,
    failed: 0,
    retried: 0,
    deadLettered: 0,
    deadLetterFailed: 0,
  };
}

function pickMetrics(m: RuleMetrics): RuleMetrics {
  return {
    matched: m.matched,
    invocations: m.invocations,
    delivered: m.delivered,
    failed: m.failed,
    retried: m.retried,
    deadLettered: m.deadLettered,
    deadLetterFailed: m.deadLetterFailed,
  };
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
