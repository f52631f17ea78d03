// The page at /: wires the room, the notification bell and the forms to the DOM.
import { ChatRoom } from "./chat-room.js";
import { ConnectionStatus } from "./connection-status.js";
import { NotificationFeed } from "./notification-feed.js";

const $ = (id) => document.getElementById(id);
const status = new ConnectionStatus($("connection-status"));
let room = null;

// -- rooms ------------------------------------------------------------------------------

const ROOM_NAME = /^[A-Za-z0-9_-]{1,100}$/;

function joinRoom(name) {
  if (!ROOM_NAME.test(name) || (room && room.room === name)) return;
  if (room) room.close();
  $("messages").replaceChildren();
  $("chat-error").hidden = true;
  $("room-title").textContent = `#${name}`;
  $("room-title").dataset.room = name;
  history.replaceState(null, "", `?room=${encodeURIComponent(name)}`);
  markCurrentRoom(name);
  room = new ChatRoom(name, $("messages"), showChatError);
  status.track("chat", room.socket);
  room.socket.open();
}

function markCurrentRoom(name) {
  const list = $("room-list");
  let link = list.querySelector(`a[data-room="${name}"]`);
  if (!link) {
    link = document.createElement("a");
    link.href = `?room=${encodeURIComponent(name)}`;
    link.dataset.room = name;
    link.textContent = `#${name}`;
    const item = document.createElement("li");
    item.append(link);
    list.prepend(item);
  }
  for (const other of list.querySelectorAll("a")) other.removeAttribute("aria-current");
  link.setAttribute("aria-current", "page");
}

function showChatError(text) {
  $("chat-error").textContent = text;
  $("chat-error").hidden = false;
}

$("room-list").addEventListener("click", (event) => {
  const link = event.target.closest("a[data-room]");
  if (!link) return;
  event.preventDefault();
  joinRoom(link.dataset.room);
});

$("room-form").addEventListener("submit", (event) => {
  event.preventDefault();
  joinRoom($("room-name").value.trim());
  $("room-name").value = "";
  $("message-text").focus();
});

$("message-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("message-text");
  const text = input.value;
  if (!text.trim()) return;
  if (room && room.send(text)) {
    input.value = "";
    $("chat-error").hidden = true;
  } else {
    showChatError("Not connected: your message is kept; send it again once connected.");
  }
});

// -- notifications ----------------------------------------------------------------------

const bellButton = $("bell-button");
const bellPanel = $("bell-panel");
const bellCount = $("bell-count");
const notificationList = $("notification-list");
let unread = 0;

function setBellOpen(open) {
  bellPanel.hidden = !open;
  bellButton.setAttribute("aria-expanded", String(open));
  if (open) {
    unread = 0;
    bellCount.hidden = true;
  }
}

bellButton.addEventListener("click", () => setBellOpen(bellPanel.hidden));
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !bellPanel.hidden) {
    setBellOpen(false);
    bellButton.focus();
  }
});

function showNotification(notification) {
  notificationList.querySelector(".empty")?.remove();
  const item = document.createElement("li");
  item.dataset.id = notification.id;
  item.textContent = notification.text;
  notificationList.append(item);
  if (bellPanel.hidden) {
    unread += 1;
    bellCount.textContent = String(unread);
    bellCount.hidden = false;
  }
}

function clearNotifications() {
  notificationList.replaceChildren();
  unread = 0;
  bellCount.hidden = true;
}

const feed = new NotificationFeed(
  Number(notificationList.dataset.lastId),
  showNotification,
  clearNotifications,
);
feed.addEventListener("statechange", () => {
  $("bell-transport").textContent =
    feed.transport === "sse" ? "Live over Server-Sent Events" : "Live over a websocket";
  bellButton.dataset.transport = feed.transport;
});
status.track("notifications", feed);
feed.start();

$("notify-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const result = $("notify-result");
  const body = { to: form.elements.to.value, text: form.elements.text.value };
  let response;
  try {
    response = await fetch("/api/notifications/", {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "X-CSRFToken": form.elements.csrfmiddlewaretoken.value,
      },
      body: JSON.stringify(body),
    });
  } catch {
    result.textContent = "Not sent: the server cannot be reached.";
    return;
  }
  const answer = await response.json().catch(() => ({}));
  if (response.ok) {
    result.textContent = `Sent to ${body.to}.`;
    form.elements.text.value = "";
  } else {
    result.textContent = `Not sent: ${answer.error ?? response.statusText}`;
  }
});

joinRoom($("room-title").dataset.room);
