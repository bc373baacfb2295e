/* The composer's "Canned response" picker (templates/console/_macro_picker.html).
 *
 * The server answers a choice with the macro filled in for the ticket (#macro-chosen, with
 * data-macro-text); this puts that text into the reply box at the cursor. While the agent has not
 * edited it, choosing another macro replaces the inserted text instead of piling up (arrow keys on a
 * closed <select> fire "change" for every option passed), and choosing none takes it out again.
 */
(function () {
  "use strict";

  // What the reply box held before the last insertion, and what it held right after it.
  var before = null;
  var after = null;

  function replyBox() {
    return document.getElementById("reply-body");
  }

  function undoUntouchedInsertion(box) {
    if (after !== null && box.value === after.value) {
      box.value = before.value;
      box.setSelectionRange(before.start, before.end);
    }
    before = after = null;
  }

  function insert(text, focus) {
    var box = replyBox();
    if (!box) return;
    undoUntouchedInsertion(box);
    if (text) {
      before = { value: box.value, start: box.selectionStart, end: box.selectionEnd };
      if (box.value.trim() === "") {
        box.value = text;
      } else {
        box.setRangeText(text, box.selectionStart, box.selectionEnd, "end");
      }
      after = { value: box.value };
    }
    // The live counter listens for input.
    box.dispatchEvent(new Event("input", { bubbles: true }));
    if (focus) box.focus();
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id !== "macro-chosen") return;
    var chosen = event.detail.target.querySelector("[data-macro-text]");
    var fromButton = event.detail.requestConfig && event.detail.requestConfig.elt.hasAttribute("data-macro-insert");
    insert(chosen ? chosen.getAttribute("data-macro-text") : "", fromButton);
  });

  document.addEventListener("click", function (event) {
    if (!event.target.closest("[data-macro-clear]")) return;
    var select = document.getElementById("macro-select");
    var chosen = document.getElementById("macro-chosen");
    if (select) select.value = "";
    if (chosen) chosen.textContent = "";
    insert("", true);
  });
})();
