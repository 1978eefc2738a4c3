// Keyboard: "/" jumps to the search field, Escape leaves it. Everything else is links, forms and buttons.
document.addEventListener("keydown", (event) => {
  const field = document.getElementById("search");
  const typing = event.target instanceof HTMLElement && event.target.closest("input, textarea, select");
  if (event.key === "/" && field && !typing) {
    event.preventDefault();
    field.focus();
    field.select();
  } else if (event.key === "Escape" && typing) {
    event.target.blur();
  }
});
