/* Agent console keyboard shortcuts. Plain JS, no framework; every action also has a mouse path.
 *
 *   Queue:       j / k move the selection, Enter opens it, / focuses the search box (#search, if any)
 *   Ticket page: r reply, n internal note, a "Assign to me", e "Resolve"
 *   Everywhere:  ? opens the shortcut help (<dialog id="shortcuts-dialog">), Esc closes it
 *
 * Shortcuts are ignored while typing (inputs, textareas, selects, contenteditable), with Ctrl, Alt
 * or Meta held, and while a dialog is open. The queue's rows are replaced by htmx every few
 * seconds: the selection is kept by ticket id (data-ticket-id on the first cell) across swaps.
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
