// The playground's few behaviours that htmx does not cover: chat streaming (fetch + a
// ReadableStream, text appended as text nodes, never as HTML; Stop aborts the request and the
// server closes the model's stream), sending the body editor as a file part, Copy buttons, and
// an endpoint chosen before htmx had loaded.
(function () {
  "use strict";

  function csrfToken(form) {
    const input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // -- the request form: the editor's text travels as a file part, so a body of several MB is
  // not refused by Django's 2.5 MB limit on form fields. A chosen file wins over the editor.
  document.addEventListener("htmx:configRequest", function (event) {
    const form = event.detail.elt;
    if (!form || form.id !== "invoke-form" || !event.detail.formData) return;
    const upload = form.querySelector("input[name=upload]");
    if (upload && upload.files && upload.files.length) {
      event.detail.formData.delete("body");
      return;
    }
    const text = form.querySelector("textarea[name=body]").value;
    event.detail.formData.delete("body");
    event.detail.formData.append("body", new Blob([text]), "body");
  });

  // -- chat
  let controller = null;
  let turns = [];

  function chatElements() {
    return {
      form: document.getElementById("chat-form"),
      log: document.getElementById("chat-log"),
      send: document.getElementById("chat-send"),
      stop: document.getElementById("chat-stop"),
      error: document.getElementById("chat-error"),
      meter: document.getElementById("chat-meter"),
      result: document.getElementById("chat-result"),
    };
  }

  function bubble(log, role, text) {
    const empty = log.querySelector(".pg-chat-empty");
    if (empty) empty.remove();
    const item = document.createElement("div");
    item.className = "pg-turn pg-turn-" + role;
    const who = document.createElement("span");
    who.className = "pg-turn-role";
    who.textContent = role === "user" ? "You" : "Model";
    const content = document.createElement("div");
    content.className = "pg-turn-text";
    content.textContent = text;
    item.append(who, content);
    log.append(item);
    log.scrollTop = log.scrollHeight;
    return content;
  }

  function showError(parts, message) {
    parts.error.textContent = message;
    parts.error.hidden = false;
  }

  function loadResult(parts, url) {
    if (url && window.htmx) {
      window.htmx.ajax("GET", url, { target: "#chat-result", swap: "innerHTML" });
    }
  }

  function handleEvent(raw, state) {
    let name = "message";
    let data = "";
    raw.split("\n").forEach(function (line) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trim();
    });
    const value = data ? JSON.parse(data) : null;
    if (name === "started") {
      state.url = value.url;
    } else if (name === "token") {
      state.answer += value;
      state.tokens += 1;
      state.target.append(document.createTextNode(value));
      state.parts.meter.textContent = state.tokens + " tokens";
      state.parts.log.scrollTop = state.parts.log.scrollHeight;
    } else if (name === "failed") {
      state.url = value.url || state.url;
      showError(state.parts, value.message);
    } else if (name === "done") {
      state.finished = true;
      state.url = value.url || state.url;
    }
  }

  async function sendChat(parts) {
    const prompt = parts.form.querySelector("textarea[name=prompt]");
    if (!prompt.value.trim()) {
      showError(parts, "Write a message first.");
      return;
    }
    parts.error.hidden = true;
    parts.result.replaceChildren();
    parts.form.querySelector("input[name=messages]").value = JSON.stringify(turns);
    const body = new FormData(parts.form);
    const question = prompt.value;
    bubble(parts.log, "user", question);
    const state = {
      parts: parts, url: "", answer: "", tokens: 0, finished: false,
      target: bubble(parts.log, "assistant", ""),
    };
    state.target.classList.add("pg-streaming");
    controller = new AbortController();
    parts.send.disabled = true;
    parts.stop.disabled = false;
    parts.meter.textContent = "Waiting for the first token…";
    try {
      const response = await fetch(parts.form.action, {
        method: "POST",
        body: body,
        headers: { "X-CSRFToken": csrfToken(parts.form) },
        signal: controller.signal,
        credentials: "same-origin",
      });
      if (!response.ok) {
        let message = "The request failed (" + response.status + ").";
        try { message = (await response.json()).message || message; } catch (ignored) { /* not JSON */ }
        state.target.parentElement.remove();
        showError(parts, message);
        parts.meter.textContent = "";
        return;
      }
      prompt.value = "";
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        buffer += decoder.decode(chunk.value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          handleEvent(buffer.slice(0, end), state);
          buffer = buffer.slice(end + 2);
        }
      }
      turns.push({ role: "user", content: question }, { role: "assistant", content: state.answer });
      parts.meter.textContent = state.tokens + " tokens";
      loadResult(parts, state.url);
    } catch (error) {
      if (error.name === "AbortError") {
        turns.push({ role: "user", content: question }, { role: "assistant", content: state.answer });
        const note = document.createElement("span");
        note.className = "pg-stopped";
        note.textContent = " (stopped)";
        state.target.append(note);
        parts.meter.textContent = "Stopped after " + state.tokens + " tokens";
      } else {
        showError(parts, "The connection broke: " + error.message);
      }
    } finally {
      state.target.classList.remove("pg-streaming");
      controller = null;
      parts.send.disabled = false;
      parts.stop.disabled = true;
    }
  }

  document.addEventListener("submit", function (event) {
    if (event.target.id !== "chat-form") return;
    event.preventDefault();
    if (!controller) sendChat(chatElements());
  });

  document.addEventListener("click", function (event) {
    const target = event.target;
    if (target.id === "chat-stop" && controller) {
      controller.abort();
    } else if (target.id === "chat-new") {
      const parts = chatElements();
      if (controller) controller.abort();
      turns = [];
      parts.log.replaceChildren();
      const empty = document.createElement("p");
      empty.className = "muted pg-chat-empty";
      empty.textContent = "No messages yet. Ask something below.";
      parts.log.append(empty);
      parts.result.replaceChildren();
      parts.error.hidden = true;
      parts.meter.textContent = "";
    } else if (target.classList && target.classList.contains("pg-copy")) {
      const code = document.getElementById(target.dataset.copy);
      if (!code) return;
      const done = function () { target.textContent = "Copied"; };
      const fallback = function () {
        const range = document.createRange();
        range.selectNodeContents(code);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        target.textContent = "Selected: press Ctrl+C";
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(code.textContent).then(done, fallback);
      } else {
        fallback();
      }
    }
  });

  // An endpoint chosen before htmx's script ran (a slow network), or restored by the browser
  // on reload, changed no workbench: ask for it now. htmx's own start-up ran first (its script
  // comes first in the page), so its listeners are in place.
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.htmx) return;
    document.querySelectorAll("select[hx-trigger=change]").forEach(function (select) {
      const shown = Array.prototype.find.call(select.options, function (option) {
        return option.defaultSelected;
      });
      const shownValue = shown ? shown.value : select.options.length ? select.options[0].value : "";
      if (select.value !== shownValue) htmx.trigger(select, "change");
    });
  });

  // A new endpoint in the workbench starts a new conversation.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "workbench") turns = [];
  });
})();
