// "Copy the link" of a page that shows a new link once: to the clipboard, or, where the
// browser refuses that, selected for the person to copy.
(() => {
  "use strict";
  const field = document.getElementById("link");
  const said = document.getElementById("copied");
  document.getElementById("copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(field.value);
      said.textContent = "Copied.";
    } catch {
      field.select();
      said.textContent = "Selected: press Ctrl+C (⌘C on a Mac) to copy.";
    }
  });
})();
