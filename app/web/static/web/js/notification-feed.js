import { backoffDelay } from "./backoff.js";
import { ReconnectingSocket, socketUrl } from "./reconnecting-socket.js";

// Failed websocket attempts, without one ever opening, before the feed switches to SSE.
const ATTEMPTS_BEFORE_FALLBACK = 2;
// How long an SSE reconnect may take before the status says "Reconnecting…".
const QUIET_RETRY_MS = 3000;

/**
 * The signed-in user's notifications: over /ws/notifications/, or, when websockets
 * cannot be opened here, over Server-Sent Events from /sse/notifications/.
 *
 * Both resume after the newest notification seen (`?since=`; EventSource also sends
 * Last-Event-ID on its own reconnects), and each notification is delivered once. When
 * too many were missed to replay, the server says "resume.reset" and sends the latest
 * ones: `onReset` clears what is shown, and they follow.
 * "statechange" events carry the same states as ReconnectingSocket's; `transport` says
 * which one is in use.
 */
export class NotificationFeed extends EventTarget {
  constructor(lastId, onNotification, onReset) {
    super();
    this.lastId = lastId;
    this.onNotification = onNotification;
    this.onReset = onReset;
    this.transport = "websocket";
    this.state = "connecting";
    this.attempt = 0;
  }

  start() {
    if (typeof window.WebSocket !== "function") return this.startSse();
    this.socket = new ReconnectingSocket(
      () => socketUrl(`/ws/notifications/?since=${this.lastId}`),
      (frame) => {
        if (frame.type === "notification") this.receive(frame);
        else if (frame.type === "resume.reset") this.startOver();
      },
    );
    this.socket.addEventListener("statechange", (event) => {
      const { state } = event.detail;
      const blocked =
        state === "unavailable" ||
        (state === "reconnecting" && !this.socket.everOpened && this.socket.attempt >= ATTEMPTS_BEFORE_FALLBACK);
      if (blocked) {
        this.socket.close();
        this.startSse();
      } else {
        this.setState(state);
      }
    });
    this.socket.open();
  }

  startSse() {
    this.transport = "sse";
    this.setState(this.attempt ? "reconnecting" : "connecting");
    const source = new EventSource(`/sse/notifications/?since=${this.lastId}`);
    source.addEventListener("open", () => {
      clearTimeout(this.quietRetry);
      this.attempt = 0;
      this.setState("open");
    });
    source.addEventListener("notification", (event) => this.receive(JSON.parse(event.data)));
    source.addEventListener("resume.reset", () => this.startOver());
    source.addEventListener("error", () => {
      clearTimeout(this.quietRetry);
      if (source.readyState !== EventSource.CLOSED) {
        // The stream ended (the server renews it every WEBSOCKET_REAUTH_INTERVAL) or
        // dropped; EventSource reconnects by itself within a second. Only a longer wait
        // is worth telling the user about.
        this.quietRetry = setTimeout(() => this.setState("reconnecting"), QUIET_RETRY_MS);
        return;
      }
      // An HTTP error (e.g. 502 while daphne restarts): EventSource gives up; we do not.
      const delay = backoffDelay(this.attempt);
      this.attempt += 1;
      this.setState("reconnecting", { delay });
      setTimeout(() => this.startSse(), delay);
    });
  }

  startOver() {
    this.lastId = 0;
    this.onReset();
  }

  receive(notification) {
    if (notification.id <= this.lastId) return;
    this.lastId = notification.id;
    this.onNotification(notification);
  }

  setState(state, detail = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("statechange", { detail: { state, ...detail } }));
  }
}
