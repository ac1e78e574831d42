// Drag and drop on the ranking page (SortableJS). Where the labeler lets go decides where the card goes: on a
// tier's row (cards, label or padding) it joins that tier, on a gap between tiers it starts a new tier there,
// on the pool it leaves the ranking. While a card is dragged nothing on the panel changes size (ranking.css
// keeps the card's placeholder out of the layout), so the row under the pointer is the row the labeler aimed
// at; the zone a release would choose is highlighted as the pointer moves, so what is shown is what happens.
// Before, Sortable's placeholder grew whichever list it entered, 50 ms behind the pointer, and the rows moved
// under a drop a few pixels inside a tier's edge: the tie became a tier of its own.
// The zone is read when the pointer is released, before Sortable handles the release: by the time Sortable
// calls onEnd it has put the card back into the layout of the list it last entered (50 ms behind the pointer,
// later on a busy machine), and the rows below that list have moved down under the pointer.

const TARGET = "rk-drop-target";

// {kind: "tier" | "gap" | "pool", index} for the zone under a point, or null outside them all.
export function zoneAt(x, y, tiersEl) {
  const el = document.elementFromPoint(x, y);
  if (!el) return null;
  const row = el.closest(".rk-tier");
  if (row && tiersEl.contains(row)) return { kind: "tier", index: [...tiersEl.querySelectorAll(".rk-tier")].indexOf(row), el: row };
  const gap = el.closest(".rk-gap");
  if (gap && tiersEl.contains(gap)) return { kind: "gap", index: Number(gap.dataset.index), el: gap };
  const pool = el.closest(".rk-pool-box");
  if (pool) return { kind: "pool", index: -1, el: pool };
  return null;
}

function pointOf(event) {
  const point = event?.changedTouches?.[0] || event?.touches?.[0] || event;
  return point && typeof point.clientX === "number" ? point : null;
}

// Makes every zone of the panel sortable; `onDrop(id, zone)` gets the zone under the release point (or null,
// and then the order Sortable left in the DOM stands). Returns a function that undoes it before a redraw.
export function makeSortable({ tiersEl, onDrop }) {
  if (!window.Sortable) return () => {}; // the keyboard still works
  let shown = null;
  let frame = 0;
  const highlight = (zone) => {
    if (shown === zone?.el) return;
    shown?.classList.remove(TARGET);
    shown = zone?.el || null;
    shown?.classList.add(TARGET);
  };
  const onMove = (event) => {
    const point = pointOf(event);
    if (!point || frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (document.body.classList.contains("rk-dragging")) highlight(zoneAt(point.clientX, point.clientY, tiersEl));
    });
  };
  // Listened to on window in the capture phase: before Sortable's own listeners (on the document) see it.
  let released = undefined;
  const onRelease = (event) => {
    const point = pointOf(event);
    if (released === undefined && point) released = zoneAt(point.clientX, point.clientY, tiersEl);
  };
  const RELEASES = ["pointerup", "mouseup", "touchend"];
  const sortables = [...document.querySelectorAll(".rk-zone")].map((list) =>
    window.Sortable.create(list, {
      group: "ranking",
      animation: 0, // nothing moves while dragging: see ranking.css
      forceFallback: true, // mouse/touchpad/touch alike, no native drag image quirks
      fallbackTolerance: 3,
      emptyInsertThreshold: 0,
      ghostClass: "rk-ghost",
      chosenClass: "rk-chosen",
      dragClass: "rk-dragged",
      onStart: () => {
        released = undefined;
        RELEASES.forEach((type) => window.addEventListener(type, onRelease, true));
        document.body.classList.add("rk-dragging");
        document.addEventListener("pointermove", onMove, true);
        document.addEventListener("touchmove", onMove, true);
      },
      onEnd: (event) => {
        RELEASES.forEach((type) => window.removeEventListener(type, onRelease, true));
        const point = pointOf(event.originalEvent);
        const zone = released !== undefined ? released : point ? zoneAt(point.clientX, point.clientY, tiersEl) : null;
        released = undefined;
        document.removeEventListener("pointermove", onMove, true);
        document.removeEventListener("touchmove", onMove, true);
        cancelAnimationFrame(frame);
        frame = 0;
        highlight(null);
        document.body.classList.remove("rk-dragging");
        const id = Number(event.item.dataset.id);
        // Let Sortable finish with the DOM first, then redraw from the new state.
        requestAnimationFrame(() => onDrop(id, zone));
      },
    }),
  );
  return () => sortables.forEach((s) => s.destroy());
}
