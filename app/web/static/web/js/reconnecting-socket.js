import { backoffDelay, restartDelay } from "./backoff.js";

// Close codes after which the same request cannot succeed (README, "Endpoints").
const GIVE_UP = new Set([1007, 1009, 4400, 4404]);
const SIGNED_OUT = 4401;
const SERVICE_RESTART = 1012;

/** ws:// or wss:// URL for a path on this site. */
export function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

/**
 * A websocket that reopens itself: with backoff and jitter after a failure, at once after
 * a server restart (1012), when the network comes back after going offline. Not after
 * "sign in" (4401) or a request the server will always refuse.
 *
 * `url` is a function, called for every attempt, so a caller can resume (`?since=`).
 * Listeners get "statechange" events; `state` is one of connecting, open, reconnecting,
 * offline, signed-out, failed, unavailable (the browser cannot open websockets at all),
 * closed (by us).
 */
export class ReconnectingSocket extends EventTarget {
  constructor(url, onMessage) {
    super();
    this.url = url;
    this.onMessage = onMessage;
    this.state = "connecting";
    this.attempt = 0;
    this.everOpened = false;
    this.socket = null;
    this.timer = null;
    this.onOnline = () => this.state === "offline" || this.state === "reconnecting" ? this.open() : null;
    window.addEventListener("online", this.onOnline);
  }

  setState(state, detail = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("statechange", { detail: { state, ...detail } }));
  }

  open() {
    clearTimeout(this.timer);
    if (!navigator.onLine) {
      this.setState("offline");
      return;
    }
    let socket;
    try {
      socket = new WebSocket(this.url());
    } catch (error) {
      this.setState("unavailable", { error });
      return;
    }
    this.socket = socket;
    this.setState(this.everOpened || this.attempt ? "reconnecting" : "connecting");
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.everOpened = true;
      this.setState("open");
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onMessage(frame);
    });
    socket.addEventListener("close", (event) => this.closed(socket, event.code));
  }

  closed(socket, code) {
    if (socket !== this.socket || this.state === "closed") return;
    this.socket = null;
    if (code === SIGNED_OUT) return this.setState("signed-out");
    if (GIVE_UP.has(code)) return this.setState("failed", { code });
    if (!navigator.onLine) return this.setState("offline");
    const delay = code === SERVICE_RESTART ? restartDelay() : backoffDelay(this.attempt);
    this.attempt += 1;
    this.setState("reconnecting", { delay, code });
    this.timer = setTimeout(() => this.open(), delay);
  }

  /** Send a JSON frame; false when the socket is not open (the caller keeps the text). */
  send(content) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(content));
    return true;
  }

  close() {
    clearTimeout(this.timer);
    window.removeEventListener("online", this.onOnline);
    this.setState("closed");
    if (this.socket) this.socket.close(1000);
    this.socket = null;
  }
}
