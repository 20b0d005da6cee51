import { describe, expect, it } from 'vitest';
import { commandTraceparent } from '../../examples/orders/demo-run.ts';
import { envelopeTraceparent } from '../../examples/orders/observe.ts';
import {
  buildTraceSummary,
  consumerTraceLines,
  pickTraceSample,
  renderTraceLine,
  traceIdOf,
  traceWarning,
} from '../../examples/orders/report.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;
const EVENT = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';

const line = (fn: string, entry: Record<string, unknown>) =>
  `2026-11-30T05:40:12.345Z [${fn}] ${JSON.stringify({ level: 'WARN', timestamp: '2026-11-30T05:40:12.345Z', ...entry })}`;
const billingLine = line('ServerlessOutbox-BillingConsumerFunctionA1B2', {
  message: 'Event not applied; it will be retried',
  service: 'billing',
  eventId: EVENT,
  traceId: TRACE_ID,
  xrayTraceId: `1-${TRACE_ID.slice(0, 8)}-${TRACE_ID.slice(8)}`,
});
const notificationsLine = line('ServerlessOutbox-NotificationsConsumerFunctionC3D4', {
  message: 'Event not applied; it will be retried',
  service: 'notifications',
  eventId: EVENT,
  traceId: TRACE_ID,
});

describe('trace summary of a sample event', () => {
  it('shows the trace id at producer, relay and each consumer', () => {
    const summary = buildTraceSummary({
      event: { id: EVENT, traceparent: TRACEPARENT, status: 'PUBLISHED' },
      consumers: ['billing', 'notifications'],
      logLines: ['note something', billingLine, notificationsLine, ''],
    });
    expect(summary.traceId).toBe(TRACE_ID);
    expect(summary.missing).toEqual([]);
    expect(renderTraceLine(summary)).toBe(
      `trace ${TRACE_ID} of event ${EVENT}: producer ✓ (committed), relay ✓ (published with traceparent), ` +
        'billing ✓ (log line), notifications ✓ (log line)',
    );
    expect(traceWarning(summary)).toBeUndefined();
  });

  it('says which consumer has no line for the event and trace, without throwing', () => {
    const otherTrace = notificationsLine.replace(TRACE_ID, 'ffffffffffffffffffffffffffffffff');
    const otherEvent = line('x', { service: 'notifications', eventId: 'another', traceId: TRACE_ID });
    const summary = buildTraceSummary({
      event: { id: EVENT, traceparent: TRACEPARENT, status: 'PUBLISHED' },
      consumers: ['billing', 'notifications'],
      logLines: [billingLine, billingLine, otherTrace, otherEvent],
    });
    expect(summary.missing).toEqual(['notifications']);
    expect(renderTraceLine(summary)).toContain('billing ✓ (2 log lines)');
    expect(renderTraceLine(summary)).toContain(
      'notifications ✗ (no log line with this event id and trace id)',
    );
    expect(traceWarning(summary)).toMatch(/^warning: no log line of notifications carries event/);
  });

  it('does not credit the relay for an unpublished record or an envelope without traceparent', () => {
    const held = buildTraceSummary({
      event: { id: EVENT, traceparent: TRACEPARENT, status: 'READY' },
      consumers: [],
      logLines: [],
    });
    expect(renderTraceLine(held)).toContain('relay ✗ (not published (status READY))');
    const untraced = buildTraceSummary({
      event: { id: EVENT, status: 'PUBLISHED' },
      consumers: ['billing'],
      logLines: [billingLine],
    });
    expect(untraced.traceId).toBeUndefined();
    expect(renderTraceLine(untraced)).toBe(
      `trace (none) of event ${EVENT}: producer ✗ (no traceparent in the envelope), ` +
        'relay ✗ (published without traceparent), billing ✗ (no log line with this event id and trace id)',
    );
  });

  it('matches a consumer by its Powertools service, else by its function name', () => {
    const noService = line('Demo-BillingFn', { eventId: EVENT, traceId: TRACE_ID });
    expect(consumerTraceLines([noService], 'billing', EVENT, TRACE_ID)).toHaveLength(1);
    expect(consumerTraceLines([billingLine], 'notifications', EVENT, TRACE_ID)).toHaveLength(0);
    expect(consumerTraceLines(['garbage {not json', billingLine], 'billing', EVENT, TRACE_ID)).toHaveLength(
      1,
    );
  });

  it('picks the traced event the most hops saw, then the earliest', () => {
    const events = [
      { id: 'untraced', status: 'PUBLISHED', committedAt: 1 },
      { id: 'early', traceparent: commandTraceparent('o1.place'), status: 'PUBLISHED', committedAt: 2 },
      { id: EVENT, traceparent: TRACEPARENT, status: 'PUBLISHED', committedAt: 3 },
      { id: 'later', traceparent: commandTraceparent('o2.place'), status: 'PUBLISHED', committedAt: 4 },
    ];
    expect(pickTraceSample(events, ['billing'], [billingLine])?.eventId).toBe(EVENT);
    expect(pickTraceSample(events, ['billing'], [])?.eventId).toBe('early');
    expect(
      pickTraceSample([events[0] ?? { id: '', status: '', committedAt: 0 }], ['billing'], []),
    ).toBeUndefined();
  });
});

describe('trace context of the demo', () => {
  it('gives each command a stable, valid traceparent', () => {
    const tp = commandTraceparent('o00001.place');
    expect(tp).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(commandTraceparent('o00001.place')).toBe(tp);
    expect(commandTraceparent('o00001.pay')).not.toBe(tp);
    expect(commandTraceparent('o00001.place', 'run-2')).not.toBe(tp);
    expect(traceIdOf(tp)).toBe(tp.slice(3, 35));
    expect(traceIdOf('01-abc')).toBeUndefined();
  });

  it('reads the traceparent of a stored envelope, plain or gzipped', async () => {
    const { gzipSync } = await import('node:zlib');
    const json = JSON.stringify({ id: EVENT, traceparent: TRACEPARENT });
    expect(envelopeTraceparent({ envelope: json })).toBe(TRACEPARENT);
    expect(envelopeTraceparent({ envelopeGzip: new Uint8Array(gzipSync(json)) })).toBe(TRACEPARENT);
    expect(envelopeTraceparent({ envelope: '{}' })).toBeUndefined();
    expect(envelopeTraceparent({})).toBeUndefined();
  });
});
