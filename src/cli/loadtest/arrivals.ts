/**
 * When requests are sent. Closed loop: N users, each sending its next
 * request when the last one ends, with the number of users stepping or
 * ramping over stages (k6's ramping-vus; spikes are steps). Open loop:
 * Poisson arrivals at a rate with a cap on requests in flight, as
 * `vllm bench serve` does (an arrival waits for a free slot). Every run is
 * bounded by a request count and a duration and stops by itself; requests
 * still running past the grace after the end are aborted.
 */

/** One stage of a closed loop: `users` for `durationS` (ramping linearly from the previous stage's users when `ramp`). */
export interface Stage {
  users: number;
  durationS: number;
  ramp?: boolean;
}

/** How requests arrive. */
export type Arrival =
  | { kind: 'closed'; stages: Stage[]; requests?: number }
  | { kind: 'open'; rate: number; maxConcurrency: number; durationS: number; requests?: number; seed?: number };

/** Bounds every run obeys whatever its arrival says. */
export interface Bounds {
  /** Most requests started. */
  maxRequests: number;
  /** Most seconds between the first send and the last; in-flight requests are aborted then. */
  maxDurationS: number;
  /** Seconds in-flight requests get after the arrivals end, before they are aborted. */
  graceS: number;
}

/** One request to run; `signal` aborts it at the run's hard bound. */
export type Job = (index: number, signal: AbortSignal) => Promise<void>;

/** What a run did. */
export interface ArrivalResult {
  started: number;
  wallMs: number;
  /** What ended the arrivals: the request count, the duration, or an outside abort. */
  stoppedBy: 'requests' | 'duration' | 'aborted';
  /** Requests aborted because they outlived the grace. */
  abortedInFlight: number;
}

/** Largest number of users any stage asks for. */
export function peakUsers(a: Arrival): number {
  return a.kind === 'closed' ? Math.max(1, ...a.stages.map((s) => s.users)) : a.maxConcurrency;
}

/** The seconds an arrival plan lasts at most (its stages, or its duration). */
export function plannedSeconds(a: Arrival): number {
  return a.kind === 'closed' ? a.stages.reduce((s, x) => s + x.durationS, 0) : a.durationS;
}

/** Target users at `tS` seconds into a closed loop; 0 once the stages are over. */
export function usersAt(stages: readonly Stage[], tS: number): number {
  let from = 0;
  let at = 0;
  for (const s of stages) {
    if (tS < at + s.durationS) {
      if (!s.ramp) return s.users;
      const f = (tS - at) / s.durationS;
      return Math.round(from + (s.users - from) * f);
    }
    at += s.durationS;
    from = s.users;
  }
  return 0;
}

/** A small seeded PRNG (mulberry32), so a run's arrival times can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Poisson arrivals: exponential gaps with mean 1/rate seconds. */
export function poissonGapsS(rate: number, random: () => number): () => number {
  return () => -Math.log(1 - random()) / rate;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Runs `job` as `arrival` says until its count or time is up (or `bounds`,
 * or `outer` aborts), then waits for requests in flight up to the grace.
 */
export async function runArrivals(arrival: Arrival, job: Job, bounds: Bounds, outer?: AbortSignal): Promise<ArrivalResult> {
  const t0 = performance.now();
  const plannedMs = Math.min(plannedSeconds(arrival), bounds.maxDurationS) * 1000;
  const maxRequests = Math.min(arrival.requests ?? Number.POSITIVE_INFINITY, bounds.maxRequests);
  const hard = new AbortController(); // aborts requests in flight at the hard bound
  const stopArrivals = new AbortController();
  const onOuter = () => {
    stopArrivals.abort();
    hard.abort();
  };
  outer?.addEventListener('abort', onOuter, { once: true });
  const hardTimer = setTimeout(() => hard.abort(), Math.min(plannedMs + bounds.graceS * 1000, bounds.maxDurationS * 1000));
  const endTimer = setTimeout(() => stopArrivals.abort(), plannedMs);
  let started = 0;
  let inFlight = 0;
  let abortedInFlight = 0;
  let stoppedBy: ArrivalResult['stoppedBy'] = 'duration';
  const elapsedS = () => (performance.now() - t0) / 1000;
  const claim = (): number | null => {
    if (stopArrivals.signal.aborted) return null;
    if (started >= maxRequests) {
      stoppedBy = 'requests';
      stopArrivals.abort();
      return null;
    }
    return started++;
  };
  const runOne = async (i: number) => {
    inFlight++;
    try {
      await job(i, hard.signal);
    } finally {
      inFlight--;
      if (hard.signal.aborted) abortedInFlight++;
    }
  };

  try {
    if (arrival.kind === 'closed') {
      const peak = peakUsers(arrival);
      const user = async (u: number) => {
        while (!stopArrivals.signal.aborted) {
          if (u >= usersAt(arrival.stages, elapsedS())) {
            await sleep(10, stopArrivals.signal); // this user is off in this stage
            continue;
          }
          const i = claim();
          if (i === null) return;
          await runOne(i);
        }
      };
      await Promise.all(Array.from({ length: peak }, (_, u) => user(u)));
    } else {
      const gap = poissonGapsS(arrival.rate, seededRandom(arrival.seed ?? 1));
      const running = new Set<Promise<void>>();
      let nextAtMs = 0;
      for (;;) {
        nextAtMs += gap() * 1000;
        await sleep(t0 + nextAtMs - performance.now(), stopArrivals.signal);
        // An arrival waits for a free slot under the cap.
        while (running.size >= arrival.maxConcurrency && !stopArrivals.signal.aborted) await Promise.race([...running, sleep(50, stopArrivals.signal)]);
        const i = claim();
        if (i === null) break;
        const p: Promise<void> = runOne(i).finally(() => running.delete(p));
        running.add(p);
      }
      await Promise.all(running);
    }
  } finally {
    clearTimeout(endTimer);
    clearTimeout(hardTimer);
    outer?.removeEventListener('abort', onOuter);
  }
  if (outer?.aborted) stoppedBy = 'aborted';
  return { started, wallMs: performance.now() - t0, stoppedBy, abortedInFlight: inFlight + abortedInFlight };
}
