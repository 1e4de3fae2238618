/**
 * Connection-level limits of the Node HTTP server: how long headers may
 * take, how long an idle keep-alive connection is kept, a backstop on the
 * whole request, and a cap on open connections (connections past it are
 * closed at once by Node).
 */
import type http from 'node:http';

/** The wire limits, in milliseconds and counts. */
export interface ServerLimits {
  /** Time from connection (or the previous request) to the end of the headers; 408 past it. */
  headersTimeoutMs: number;
  /** Idle time after a response before a keep-alive connection is closed. */
  keepAliveTimeoutMs: number;
  /** Body-read limit (the middleware answers 408 at this point; Node's check is the backstop). */
  bodyTimeoutMs: number;
  /** Open connections at once (0: no cap). */
  maxConnections: number;
}

/** How often Node checks headers and request timeouts (its default, 30 s, is coarser than the limits). */
export const CONNECTIONS_CHECKING_INTERVAL_MS = 1000;

/** Applies `limits` to `server` (call before listen). */
export function applyServerLimits(server: http.Server, limits: ServerLimits): void {
  server.headersTimeout = limits.headersTimeoutMs;
  // Node requires requestTimeout ≥ headersTimeout; the body middleware answers first.
  server.requestTimeout = limits.headersTimeoutMs + limits.bodyTimeoutMs + 2 * CONNECTIONS_CHECKING_INTERVAL_MS;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  if (limits.maxConnections > 0) server.maxConnections = limits.maxConnections;
}
