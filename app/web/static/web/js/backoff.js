/**
 * How long to wait before reconnect attempt `attempt` (0, 1, 2, ...): exponential backoff
 * with "equal jitter". The ceiling doubles per attempt up to `cap`; the delay is half the
 * ceiling plus a random share of the other half, so thousands of clients dropped at the
 * same moment (a daphne restart) come back spread out, yet each still waits a little.
 */
export function backoffDelay(attempt, { base = 500, cap = 15000, random = Math.random } = {}) {
  const ceiling = Math.min(cap, base * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** A short random delay for "reconnect at once" (code 1012): spreads a restart's herd. */
export function restartDelay(random = Math.random) {
  return Math.round(random() * 500);
}
