import { setTimeout as sleep } from 'node:timers/promises';
import type { ActivityReport, Coordinator } from '../core/index.js';

/**
 * How often the barrier looks at the gateways' reports: they report every change
 * while frozen, and every millisecond here is one of the freeze clients wait out.
 * A look is one read of the coordinator (three Redis commands), only while a drain lasts.
 */
const POLL_MS = 2;

/**
 * A gateway has applied freeze `generation` for the db (its new checkouts wait)
 * and has nothing in flight there. A gateway that says nothing of the db has not
 * acknowledged the freeze: it might still hand out a checkout.
 */
export function gatewayDrained(report: ActivityReport, dbId: string, generation: number): boolean {
  const a = report.dbs[dbId];
  return a !== undefined && a.freezeGeneration === generation && a.checkoutsInFlight === 0;
}

/**
 * The freeze barrier (DESIGN §3, FROZEN): resolves once every live gateway
 * reports the generation applied with zero checkouts in flight. Not a sleep: it
 * passes as soon as the last gateway drains, and waits as long as one does not,
 * until `signal` (the stage's deadline) aborts it.
 */
export async function waitForFreezeBarrier(coordinator: Coordinator, dbId: string, generation: number, signal: AbortSignal): Promise<void> {
  for (;;) {
    signal.throwIfAborted();
    const reports = await coordinator.gatewayReports();
    if (reports.every((r) => gatewayDrained(r, dbId, generation))) return;
    await sleep(POLL_MS, undefined, { signal }).catch(() => undefined);
  }
}

/** The gateways that have not drained yet: what a drain timeout names. */
export async function gatewaysHoldingFreeze(coordinator: Coordinator, dbId: string, generation: number): Promise<string[]> {
  return (await coordinator.gatewayReports()).filter((r) => !gatewayDrained(r, dbId, generation)).map((r) => r.gatewayId);
}
