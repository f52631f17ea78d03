// What the user is told, worst first: the first state any connection is in wins.
const MESSAGES = [
  ["signed-out", "Signed out: sign in again"],
  ["offline", "Offline: waiting for the network"],
  ["failed", "Disconnected: reload the page"],
  ["unavailable", "Websockets are blocked here: chat cannot connect"],
  ["reconnecting", "Reconnecting…"],
  ["connecting", "Connecting…"],
  ["open", "Connected"],
];

/**
 * One line telling the user whether the page is live, from the states of every
 * connection it holds (the room's socket, the notification feed). `element` is a
 * role="status" region, so screen readers announce changes; data-state is for styling.
 */
export class ConnectionStatus {
  constructor(element) {
    this.element = element;
    this.states = new Map();
    window.addEventListener("offline", () => this.render());
    window.addEventListener("online", () => this.render());
  }

  /** Follow `source`'s "statechange" events under `name` (a new source replaces the old). */
  track(name, source) {
    this.states.set(name, source.state);
    source.addEventListener("statechange", (event) => {
      if (event.detail.state === "closed") return; // replaced on purpose (room switch)
      this.states.set(name, event.detail.state);
      this.render();
    });
    this.render();
  }

  render() {
    const states = new Set(this.states.values());
    if (!navigator.onLine) states.add("offline");
    const [state, text] = MESSAGES.find(([name]) => states.has(name)) ?? MESSAGES.at(-1);
    if (this.element.dataset.state === state) return;
    this.element.dataset.state = state;
    this.element.textContent = text;
  }
}
