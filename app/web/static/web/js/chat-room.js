import { ReconnectingSocket, socketUrl } from "./reconnecting-socket.js";

/**
 * One room: its socket and its messages in `list` (an <ol>), in id order, each once.
 *
 * The first connection gets the room's recent history; every reconnection asks for
 * `?since=<highest id seen>`, and the server replays everything after it. A message that
 * arrives twice (in a replay and live) is shown once: ids are remembered. When too much
 * was missed to replay, the server says "resume.reset" and sends the latest messages, as
 * on a first visit: the list starts over with them, and `onError` tells the user so.
 */
export class ChatRoom {
  constructor(room, list, onError) {
    this.room = room;
    this.list = list;
    this.onError = onError;
    this.lastId = 0;
    this.seen = new Set();
    this.socket = new ReconnectingSocket(() => this.url(), (frame) => this.receive(frame));
  }

  url() {
    // Once the history is in (even an empty one), every later connection resumes.
    const since = this.socket.everOpened ? `?since=${this.lastId}` : "";
    return socketUrl(`/ws/chat/${encodeURIComponent(this.room)}/${since}`);
  }

  receive(frame) {
    if (frame.error) {
      this.onError(frame.error);
    } else if (frame.type === "resume.reset") {
      this.startOver(frame);
    } else if (frame.type === "chat.message" && frame.room === this.room) {
      this.add(frame);
    }
  }

  startOver(reset) {
    this.list.replaceChildren();
    this.seen.clear();
    this.lastId = 0;
    this.onError(`You missed more than ${reset.limit} messages: showing the latest.`);
  }

  add(message) {
    if (this.seen.has(message.id)) return;
    this.seen.add(message.id);
    this.lastId = Math.max(this.lastId, message.id);
    const item = renderMessage(message);
    // Usually the newest; a message committed out of order goes where its id belongs.
    const later = [...this.list.children].find((li) => Number(li.dataset.id) > message.id);
    this.list.insertBefore(item, later ?? null);
    this.list.scrollTop = this.list.scrollHeight;
  }

  send(text) {
    return this.socket.send({ message: text });
  }

  close() {
    this.socket.close();
  }
}

function renderMessage(message) {
  const item = document.createElement("li");
  item.dataset.id = message.id;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = message.username;
  const when = document.createElement("time");
  when.dateTime = message.created;
  when.textContent = new Date(message.created).toLocaleTimeString([], {
    hour: "2-digit",
    minute: "2-digit",
  });
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = message.message;
  item.append(who, when, text);
  return item;
}
