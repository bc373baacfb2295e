/* Agent console keyboard shortcuts and the ticket page's live bits. Plain JS, no framework; every action also has a mouse path.
 *
 *   Queue:       j / k move the selection, Enter opens it, x ticks it for bulk actions,
 *                / focuses the search box (#search, if any)
 *   Ticket page: r reply, n internal note, a "Assign to me", e "Resolve"
 *   Everywhere:  ? opens the shortcut help (<dialog id="shortcuts-dialog">), Esc closes it
 *
 * It also feeds the ticket page's presence heartbeat (typing or viewing) and its collision banner.
 *
 * Shortcuts are ignored while typing (inputs, textareas, selects, contenteditable), with Ctrl, Alt
 * or Meta held, and while a dialog is open. The queue's rows are replaced by htmx every few
 * seconds: the selection is kept by ticket id (data-ticket-id on the # cell) across swaps, and so
 * are the ticks of the bulk-action checkboxes (name="ids", value = ticket id).
 */
(function () {
  "use strict";

  var SELECTED = "is-selected";
  var selectedId = null; // the selected ticket's id (a string), kept across row refreshes
  var focusInRows = false; // whether the selection had keyboard focus when the rows were swapped

  function isTyping(target) {
    if (!target || target === document.body) return false;
    if (target.isContentEditable) return true;
    var tag = target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    if (tag === "INPUT") {
      var type = (target.type || "").toLowerCase();
      return ["button", "submit", "reset", "checkbox", "radio", "image", "file", "color", "range"].indexOf(type) === -1;
    }
    return false;
  }

  function openDialog() {
    return document.querySelector("dialog[open]");
  }

  // Queue ---------------------------------------------------------------------

  function rowsBody() {
    return document.querySelector("table.tickets tbody");
  }

  function rows() {
    var body = rowsBody();
    if (!body) return [];
    return Array.prototype.filter.call(body.rows, function (row) {
      return row.querySelector("[data-ticket-id]") !== null;
    });
  }

  function rowId(row) {
    var cell = row.querySelector("[data-ticket-id]");
    return cell ? cell.getAttribute("data-ticket-id") : null;
  }

  function rowLink(row) {
    return row.querySelector("td.subject a[href]") || row.querySelector("a[href]");
  }

  function currentIndex(list) {
    for (var i = 0; i < list.length; i++) {
      if (rowId(list[i]) === selectedId) return i;
    }
    return -1;
  }

  function select(row, options) {
    options = options || {};
    rows().forEach(function (other) {
      other.classList.remove(SELECTED);
      other.removeAttribute("aria-selected");
    });
    if (!row) {
      selectedId = null;
      return;
    }
    row.classList.add(SELECTED);
    row.setAttribute("aria-selected", "true");
    selectedId = rowId(row);
    if (options.focus) {
      var link = rowLink(row);
      if (link) link.focus({ preventScroll: true });
    }
    if (options.scroll !== false) row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var list = rows();
    if (!list.length) return false;
    var index = currentIndex(list);
    var next = index === -1 ? (step > 0 ? 0 : list.length - 1) : Math.min(list.length - 1, Math.max(0, index + step));
    select(list[next], { focus: true });
    return true;
  }

  function openSelected() {
    var list = rows();
    var index = currentIndex(list);
    if (index === -1) return false;
    var link = rowLink(list[index]);
    if (!link) return false;
    window.location.assign(link.href);
    return true;
  }

  // The rows are about to be replaced: remember whether the keyboard was on them.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var body = rowsBody();
    if (body && event.detail.target === body) {
      focusInRows = body.contains(document.activeElement);
    }
  });

  // ...and put the selection (and focus, if it was there) back on the same ticket.
  document.addEventListener("htmx:afterSwap", function (event) {
    var body = rowsBody();
    if (!body || event.detail.target !== body || selectedId === null) return;
    var list = rows();
    var index = currentIndex(list);
    if (index === -1) return; // the ticket left this view: keep its id, in case it comes back
    var refocus = focusInRows && (document.activeElement === document.body || document.activeElement === null);
    select(list[index], { focus: refocus, scroll: false });
  });

  // Mouse: a click on a row (not on its links) selects it, so the keyboard carries on from there.
  document.addEventListener("click", function (event) {
    var body = rowsBody();
    if (!body || !body.contains(event.target)) return;
    var row = event.target.closest("tr");
    if (row && rowId(row) !== null) select(row, { scroll: false });
  });

  // Bulk selection: the rows' checkboxes, ticked by ticket id ------------------------

  var tickedIds = {}; // ticket id → true; kept across row refreshes, and for tickets that left the view
  var focusedTick = null; // the ticket id whose checkbox had focus when the rows were swapped

  function rowTick(row) {
    return row.querySelector('input[type="checkbox"][name="ids"]');
  }

  function ticks() {
    var body = rowsBody();
    return body ? Array.prototype.slice.call(body.querySelectorAll('input[type="checkbox"][name="ids"]')) : [];
  }

  // The count the bar shows, and the select-all box: checked when every row is ticked, mixed when some are.
  function showTicks() {
    var all = ticks();
    var ticked = all.filter(function (box) { return box.checked; }).length;
    var count = document.getElementById("bulk-count");
    if (count) {
      count.textContent = ticked === 0 ? "No tickets selected." : ticked + (ticked === 1 ? " ticket" : " tickets") + " selected.";
    }
    var selectAll = document.getElementById("select-all");
    if (selectAll) {
      selectAll.checked = all.length > 0 && ticked === all.length;
      selectAll.indeterminate = ticked > 0 && ticked < all.length;
    }
  }

  function setTick(box, checked) {
    box.checked = checked;
    if (checked) tickedIds[box.value] = true;
    else delete tickedIds[box.value];
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-all") {
      ticks().forEach(function (box) { setTick(box, target.checked); });
      showTicks();
    } else if (target.name === "ids" && rowsBody() && rowsBody().contains(target)) {
      setTick(target, target.checked);
      showTicks();
    }
  });

  function toggleSelectedTick() {
    var list = rows();
    var index = currentIndex(list);
    if (index === -1) return false;
    var box = rowTick(list[index]);
    if (!box) return false;
    setTick(box, !box.checked);
    showTicks();
    return true;
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var body = rowsBody();
    if (!body || event.detail.target !== body) return;
    var active = document.activeElement;
    focusedTick = active && active.name === "ids" && body.contains(active) ? active.value : null;
  });

  // Fresh rows come unticked: tick again the tickets the agent had ticked, and give focus back.
  document.addEventListener("htmx:afterSwap", function (event) {
    var body = rowsBody();
    if (!body || event.detail.target !== body) return;
    ticks().forEach(function (box) {
      box.checked = Object.prototype.hasOwnProperty.call(tickedIds, box.value);
      if (box.value === focusedTick) box.focus({ preventScroll: true });
    });
    focusedTick = null;
    showTicks();
  });

  // Ticket page -------------------------------------------------------------------

  function composer() {
    return document.getElementById("composer");
  }

  function setComposerKind(kind) {
    var form = composer();
    if (!form) return null;
    var radio = form.querySelector('input[name="composer_kind"][value="' + kind + '"]');
    if (radio && !radio.checked) {
      radio.checked = true;
      radio.dispatchEvent(new Event("change", { bubbles: true }));
    }
    applyComposerKind(form);
    return form.querySelector("textarea[name=body]");
  }

  // A note has no channel limit: lift the reply's maxlength while writing one, restore it after.
  function applyComposerKind(form) {
    var checked = form.querySelector('input[name="composer_kind"]:checked');
    var kind = checked ? checked.value : "reply";
    var body = form.querySelector("textarea[name=body]");
    form.setAttribute("data-composer-kind", kind);
    if (!body) return;
    if (body.hasAttribute("maxlength")) body.setAttribute("data-reply-maxlength", body.getAttribute("maxlength"));
    if (kind === "note") {
      body.removeAttribute("maxlength");
    } else if (body.hasAttribute("data-reply-maxlength")) {
      body.setAttribute("maxlength", body.getAttribute("data-reply-maxlength"));
    }
  }

  document.addEventListener("change", function (event) {
    if (event.target.name === "composer_kind" && event.target.form) applyComposerKind(event.target.form);
  });

  function focusComposer(kind) {
    var body = setComposerKind(kind);
    if (!body) return false;
    body.focus();
    body.scrollIntoView({ block: "nearest" });
    return true;
  }

  function pressAction(value) {
    var button = document.querySelector('.ticket-actions button[name="action"][value="' + value + '"]');
    if (!button || button.disabled) return false;
    if (button.form.requestSubmit) {
      button.form.requestSubmit(button);
    } else {
      button.click();
    }
    return true;
  }

  // Live ticket page (templates/console/_live_ticket.html) ------------------------------
  // The presence heartbeat says whether the agent is typing (the composer changed in the last few
  // seconds) and what (a reply or a note); it beats at once when typing starts, so others see it quickly.

  var TYPING_WINDOW_MS = 4000;
  var lastInputAt = 0;

  function presence() {
    return document.getElementById("presence");
  }

  function typingNow() {
    return Date.now() - lastInputAt < TYPING_WINDOW_MS;
  }

  document.addEventListener("input", function (event) {
    if (event.target.id !== "reply-body") return;
    var wasTyping = typingNow();
    lastInputAt = Date.now();
    if (!wasTyping && presence() && window.htmx) window.htmx.trigger(presence(), "presence-beat");
  });

  document.addEventListener("htmx:configRequest", function (event) {
    var element = presence();
    if (!element || event.detail.elt !== element) return;
    var kind = document.querySelector('#composer input[name="composer_kind"]:checked');
    var shown = element.querySelector("[data-presence-digest]");
    event.detail.parameters.state = typingNow() ? "typing" : "viewing";
    event.detail.parameters.kind = kind ? kind.value : "reply";
    event.detail.parameters.shown = shown ? shown.getAttribute("data-presence-digest") : "";
  });

  // Leaving: tell the server now (best effort) rather than let the presence expire.
  window.addEventListener("pagehide", function () {
    var element = presence();
    var token = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (!element || !token || !navigator.sendBeacon) return;
    var data = new FormData();
    data.append("csrfmiddlewaretoken", token.value);
    navigator.sendBeacon(element.getAttribute("data-leave-url"), data);
  });

  // Back from the back/forward cache: present again at once.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && presence() && window.htmx) window.htmx.trigger(presence(), "presence-beat");
  });

  // "I have read these" on the live collision banner: the composer now counts those changes as seen.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-collision-seen]");
    if (!button) return;
    var banner = button.closest("[data-seen-messages]");
    var seen = document.getElementById("composer-seen");
    if (!banner || !seen) return;
    seen.querySelector("input[name=seen_messages]").value = banner.getAttribute("data-seen-messages");
    seen.querySelector("input[name=seen_events]").value = banner.getAttribute("data-seen-events");
    banner.remove();
    var body = document.getElementById("reply-body");
    if (body) body.focus();
  });

  // Help dialog --------------------------------------------------------------------

  function helpDialog() {
    return document.getElementById("shortcuts-dialog");
  }

  function showHelp() {
    var dialog = helpDialog();
    if (!dialog || dialog.open) return false;
    dialog.showModal();
    return true;
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-shortcuts-open]")) {
      showHelp();
      return;
    }
    var dialog = helpDialog();
    if (dialog && event.target === dialog) dialog.close(); // a click on the backdrop
  });

  // Keys ------------------------------------------------------------------------------

  var handlers = {
    j: function () { return move(1); },
    k: function () { return move(-1); },
    Enter: function (event) {
      // On a link or button, Enter already does what it says.
      if (event.target.closest && event.target.closest("a[href], button, summary, [role=button]")) return false;
      return openSelected();
    },
    "/": function () {
      var search = document.getElementById("search");
      if (!search) return false;
      search.focus();
      if (search.select) search.select();
      return true;
    },
    x: toggleSelectedTick,
    "?": showHelp,
    r: function () { return focusComposer("reply"); },
    n: function () { return focusComposer("note"); },
    a: function () { return pressAction("assign-to-me"); },
    e: function () { return pressAction("resolve"); },
  };

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing) return;
    if (event.ctrlKey || event.altKey || event.metaKey) return;
    if (isTyping(event.target) || openDialog()) return;
    var handler = Object.prototype.hasOwnProperty.call(handlers, event.key) ? handlers[event.key] : null;
    if (handler && handler(event)) event.preventDefault();
  });

  function init() {
    var form = composer();
    if (form) applyComposerKind(form);
    // "Select all" needs this script, so it is shown only now; ticks the browser restored count too.
    var selectAll = document.querySelector(".select-all[hidden]");
    if (selectAll) selectAll.hidden = false;
    ticks().forEach(function (box) { if (box.checked) tickedIds[box.value] = true; });
    if (document.getElementById("bulk-count")) showTicks();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();

/* Composer attachments: the file input (#composer-files) is usable only with the reply modes listed in
 * its data-modes; choosing another mode disables it, so its files are not posted. */
(function () {
  "use strict";

  document.addEventListener("change", function (event) {
    if (event.target.name !== "mode") return;
    var files = document.getElementById("composer-files");
    if (!files) return;
    var off = (files.getAttribute("data-modes") || "").split(" ").indexOf(event.target.value) === -1;
    files.hidden = off;
    files.disabled = off;
  });
})();

/* The composer's reply window countdown (console/templatetags/console_composer.py renders it): each
 * <time data-expires-at data-now> counts down to its window's end, worded as the server words it, without
 * asking the server. Both times are the server's (ms since the epoch), so the agent's own clock being off
 * does not matter: only how much of it has passed since the countdown arrived. Wall-clock time is used (not
 * performance.now()), so a laptop that slept comes back to the right count. At zero it says "closed"; the
 * server refuses a reply sent that way with the reason, and keeps the draft. */
(function () {
  "use strict";

  var DAYS_FROM_HOURS = 48;
  var TICK_MS = 15000;
  var offsets = new WeakMap(); // element → server time minus the agent's clock, measured when it arrived

  function timeLeft(seconds) {
    seconds = Math.floor(seconds);
    if (seconds <= 0) return "closed";
    if (seconds < 60) return "less than a minute left";
    var hours = Math.floor(seconds / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    if (hours >= DAYS_FROM_HOURS) return Math.floor(hours / 24) + " d " + (hours % 24) + " h left";
    return hours ? hours + " h " + minutes + " min left" : minutes + " min left";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-expires-at]").forEach(function (element) {
      if (!offsets.has(element)) offsets.set(element, Number(element.getAttribute("data-now")) - now);
      var left = (Number(element.getAttribute("data-expires-at")) - (now + offsets.get(element))) / 1000;
      var text = timeLeft(left);
      if (element.textContent !== text) element.textContent = text;
      var countdown = element.closest(".reply-window");
      if (countdown) countdown.classList.toggle("is-closed", left <= 0);
    });
  }

  document.addEventListener("htmx:load", tick); // a conversation switch brings new countdowns
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) tick();
  });
  window.setInterval(tick, TICK_MS);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", tick);
  } else {
    tick();
  }
})();

/* Voice notes and videos play in the page (templates/console/_attachment.html). A type this browser cannot
 * play (AMR voice notes, in most) gets a note pointing at the download link instead of a dead player. */
(function () {
  "use strict";

  function checkPlayers(root) {
    root.querySelectorAll(".attachment-player[data-type]").forEach(function (player) {
      var type = player.getAttribute("data-type");
      if (!player.canPlayType || player.canPlayType(type) !== "") return;
      var note = document.createElement("span");
      note.className = "attachment-unplayable";
      note.textContent = "This browser cannot play " + type + " files: download it instead.";
      player.replaceWith(note);
    });
  }

  document.addEventListener("htmx:load", function (event) {
    checkPlayers(event.detail.elt.querySelectorAll ? event.detail.elt : document);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { checkPlayers(document); });
  } else {
    checkPlayers(document);
  }
})();

/* An email's HTML view (console/emails.py) loads its sandboxed frame only when the agent opens it: a ticket
 * page of fifty emails fetches none of them until asked. "toggle" does not bubble, hence the capture. */
(function () {
  "use strict";

  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details.open || !details.classList || !details.classList.contains("email-html")) return;
    var frame = details.querySelector("iframe[data-src]");
    if (frame && !frame.getAttribute("src")) frame.setAttribute("src", frame.getAttribute("data-src"));
  }, true);
})();

/* The Undo offered after a change on the ticket page (templates/console/_undo.html): it is there for
 * data-undo-seconds, then removed, leaving the message that says what changed. */
(function () {
  "use strict";

  function expireUndos() {
    document.querySelectorAll("form.undo-form[data-undo-seconds]").forEach(function (form) {
      var seconds = parseFloat(form.getAttribute("data-undo-seconds"));
      if (!(seconds > 0)) return;
      window.setTimeout(function () { form.remove(); }, seconds * 1000);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", expireUndos);
  } else {
    expireUndos();
  }
})();
