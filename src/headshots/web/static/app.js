// headshots: small enhancements over pages that work without JavaScript.
// Loaded as a file (the Content-Security-Policy forbids inline script).
"use strict";

(function () {
  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  // --- upload: drag and drop, preview, check right after choosing ---------------
  function setupUpload(form) {
    var inputs = $all("[data-file]", form);
    var zone = $("[data-dropzone]", form);
    var preview = $("[data-preview]", form);
    var status = $("[data-status]", form);
    var button = $("[data-submit]", form);
    var sending = false;

    function chosen() {
      return inputs.filter(function (input) { return input.files && input.files.length; })[0];
    }

    function send() {
      if (sending) return;
      sending = true;
      status.textContent = "Checking your photo…";
      button.setAttribute("aria-disabled", "true");
      button.textContent = "Checking…";
      form.submit();
    }

    function picked(input) {
      inputs.forEach(function (other) { if (other !== input) other.value = ""; });
      var file = input.files[0];
      if (file && preview && /^image\/(jpeg|png|webp|gif)$/.test(file.type)) {
        preview.src = URL.createObjectURL(file);
        preview.hidden = false;
      }
      send();
    }

    inputs.forEach(function (input) {
      input.addEventListener("change", function () { if (input.files.length) picked(input); });
    });

    form.addEventListener("submit", function (event) {
      if (!chosen()) {
        event.preventDefault();
        status.textContent = "Choose a photo of yourself first.";
        // On a phone the button can sit at the bottom edge: bring the
        // message up to where the person is looking.
        status.scrollIntoView({ block: "center" });
        return;
      }
      if (sending) { event.preventDefault(); return; }
      sending = true;
      status.textContent = "Checking your photo…";
    });

    if (!zone) return;
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("dragging");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      var files = event.dataTransfer && event.dataTransfer.files;
      if (!files || !files.length) return;
      var target = inputs[inputs.length - 1];
      var transfer = new DataTransfer();
      transfer.items.add(files[0]);
      target.files = transfer.files;
      picked(target);
    });
  }

  // --- choose: the tier limits how many styles can be ticked ----------------------
  function setupChoose(form) {
    var tiers = $all("input[name=tier]", form);
    var boxes = $all("input[name=styles]", form);
    var counter = $("[data-style-count]", form);

    function limit() {
      var tier = tiers.filter(function (t) { return t.checked; })[0];
      return tier ? parseInt(tier.getAttribute("data-styles"), 10) : 1;
    }

    function refresh(dropped, picked) {
      var allowed = limit();
      var ticked = boxes.filter(function (b) { return b.checked; });
      if (allowed === 1 && picked && picked.checked) {
        // One style allowed: the one just picked replaces the one ticked before.
        ticked.forEach(function (b) { if (b !== picked) b.checked = false; });
        ticked = [picked];
      }
      while (ticked.length > allowed) {
        ticked.pop().checked = false;
        dropped = true;
      }
      boxes.forEach(function (box) { box.disabled = allowed > 1 && !box.checked && ticked.length >= allowed; });
      var text = "Pick " + (allowed === 1 ? "1 style" : "up to " + allowed + " styles") +
        " for this tier: " + ticked.length + " chosen.";
      if (dropped) text += " Your tier allows fewer, so the last ones were unticked.";
      counter.textContent = text;
    }

    tiers.forEach(function (t) { t.addEventListener("change", function () { refresh(false); }); });
    boxes.forEach(function (b) { b.addEventListener("change", function () { refresh(false, b); }); });
    form.addEventListener("submit", function (event) {
      if (!boxes.some(function (b) { return b.checked; })) {
        event.preventDefault();
        counter.textContent = "Pick at least one style.";
        counter.focus();
      }
    });
    counter.setAttribute("tabindex", "-1");
    refresh(false);
    setupBackdrops(form);
  }

  // --- choose: the backdrop; picking a brand colour ticks its option ------------
  function setupBackdrops(form) {
    var field = $("[data-backdrops]", form);
    if (!field) return;
    var brand = $("input[name=brand_colour]", field);
    var brandRadio = $("input[name=backdrop][value=brand]", field);
    var note = $("[data-backdrop-note]", field);
    function describe() {
      var picked = $("input[name=backdrop]:checked", field);
      if (!picked || picked.value === "style") { note.textContent = "Each style keeps its own backdrop."; return; }
      var hex = picked.value === "brand" ? brand.value.toUpperCase() : picked.getAttribute("data-hex");
      note.textContent = "Every headshot of this order on " + hex + ".";
    }
    brand.addEventListener("input", function () { brandRadio.checked = true; describe(); });
    $all("input[name=backdrop]", field).forEach(function (r) { r.addEventListener("change", describe); });
    describe();
  }

  // --- order: live progress, viewer, countdown -------------------------------------
  function timeLeft(iso) {
    var seconds = Math.max(0, Math.floor((Date.parse(iso) - Date.now()) / 1000));
    var hours = Math.floor(seconds / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    return hours ? hours + " h " + (minutes < 10 ? "0" : "") + minutes + " min" : minutes + " min";
  }

  function note(tile, text, redoing) {
    var flag = document.createElement("p");
    flag.className = "flag";
    flag.setAttribute("role", "note");
    if (redoing) flag.setAttribute("data-redoing", "");
    flag.textContent = text;
    tile.insertBefore(flag, $("[data-tile-actions]", tile));
  }

  function addFlag(tile, variation) {
    var identity = variation.identity;
    if (variation.redoing) note(tile, REDOING, true);
    else if (identity && (identity.flag || identity.rerolling)) note(tile, identity.rerolling ? REROLLING : identity.message);
    if (variation.redo_failure) note(tile, "It could not be made again (" + variation.redo_failure + "); you kept this one and your redo.");
  }

  var REROLLING = "This one looked less like you: making it again…";
  var REDOING = "Being made again with a new seed: this one stays until the new one is ready…";

  // What a tile shows: a change of any of these redraws it.
  function tileKey(variation) {
    return [variation.status, variation.seed, variation.identity && variation.identity.rerolling,
      variation.redoing, variation.redo_failure || ""].join("|");
  }

  // A tile's buttons (favourite, "Make again") outlive its redraws; their state follows the order.
  function refreshActions(tile, variation, redosLeft) {
    var redo = $("[data-redo]", tile);
    if (redo) redo.hidden = !(redosLeft > 0 && (variation.status === "done" || variation.status === "failed"));
    var form = $("[data-favourite]", tile);
    if (!form) return;
    var pressed = variation.favourite ? "true" : "false";
    var button = $("button", form);
    if (button.getAttribute("aria-pressed") === pressed) return;
    button.setAttribute("aria-pressed", pressed);
    $("input[name=favourite]", form).value = variation.favourite ? "0" : "1";
    $("[aria-hidden]", button).textContent = variation.favourite ? "★" : "☆";
  }

  function tileContent(tile, variation, styleTitle) {
    tile.setAttribute("data-state", variation.status);
    tile.setAttribute("data-key", tileKey(variation));
    var actions = $("[data-tile-actions]", tile);
    tile.textContent = "";
    if (actions) tile.appendChild(actions);
    if (variation.preview_url) {
      var link = document.createElement("a");
      link.className = "enlarge";
      link.href = variation.preview_url;
      link.setAttribute("data-enlarge", "");
      link.setAttribute("aria-label", "Enlarge " + styleTitle.toLowerCase() + " variation " + variation.index);
      link.setAttribute("data-caption", styleTitle + ", variation " + variation.index);
      var img = document.createElement("img");
      // A re-roll replaces the preview under the same address.
      img.src = variation.preview_url + "?seed=" + variation.seed;
      img.width = 614;
      img.height = 768;
      img.alt = styleTitle + " headshot, variation " + variation.index +
        (document.querySelector("[data-paid=true]") ? "" : " (watermarked preview)");
      link.appendChild(img);
      tile.insertBefore(link, actions);
      addFlag(tile, variation);
      return;
    }
    var box = document.createElement("div");
    var text = document.createElement("p");
    box.className = "tile-empty";
    if (variation.status === "failed") {
      box.className += " failed";
      var strong = document.createElement("strong");
      strong.textContent = "Could not be made. ";
      text.appendChild(strong);
      text.appendChild(document.createTextNode(
        (variation.failure && variation.failure.reason) || "Something went wrong with this one."));
    } else {
      var spinner = document.createElement("span");
      spinner.className = "spinner";
      spinner.setAttribute("aria-hidden", "true");
      box.appendChild(spinner);
      text.textContent = variation.redoing ? "Being made again…" : variation.status === "running" ? "Being made…" : "Waiting…";
    }
    box.appendChild(text);
    tile.insertBefore(box, actions);
  }

  function setupOrder(root) {
    var id = root.getAttribute("data-order");
    var initialStatus = root.getAttribute("data-status");
    var paid = root.getAttribute("data-paid") === "true";
    var confirming = root.getAttribute("data-confirming") === "true";
    var progress = $("[data-progress]", root);
    var summary = $("[data-summary]", root);
    var expires = $("[data-expires]", root);

    if (expires) {
      setInterval(function () { expires.textContent = timeLeft(expires.getAttribute("data-expires")); }, 30000);
    }

    function reloadClean() { window.location.replace("/orders/" + id); }

    function update(body) {
      var finished = body.progress.finishing + body.progress.done + body.progress.failed;
      if (progress) { progress.max = body.variations.length; progress.value = finished; progress.textContent = finished + " of " + body.variations.length; }
      if (body.status === "queued" && summary) {
        summary.textContent = finished + " of " + body.variations.length + " finished. They appear below as they are made.";
      }
      var redosLeft = $("[data-redos-left]", root);
      if (redosLeft) redosLeft.textContent = body.redos_left;
      body.variations.forEach(function (variation) {
        var tile = $('[data-variation="' + variation.id + '"]', root);
        if (tile) refreshActions(tile, variation, body.redos_left);
        if (!tile || tile.getAttribute("data-key") === tileKey(variation)) return;
        var shown = tile.getAttribute("data-key") || "";
        if (variation.status === "done" && shown.indexOf("finishing|" + variation.seed + "|") === 0) {
          // The same preview is on screen already: add only what the check found.
          tile.setAttribute("data-state", "done");
          tile.setAttribute("data-key", tileKey(variation));
          $all(".flag", tile).forEach(function (old) { old.remove(); });
          addFlag(tile, variation);
          return;
        }
        var heading = $("#style-" + variation.style, root);
        var title = heading ? heading.firstChild.textContent.trim() : variation.style;
        tileContent(tile, variation, title);
      });
      if (body.paid && !paid) { reloadClean(); return true; }
      if (body.status !== "queued" && initialStatus === "queued") { reloadClean(); return true; }
      return false;
    }

    var live = initialStatus === "queued" || (confirming && !paid);
    if (!live) return;

    var polling = null;
    function poll() {
      if (polling) return;
      polling = setInterval(function () {
        fetch("/orders/" + id + "/progress", { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (response) {
            if (response.status === 404 || response.status === 410) { clearInterval(polling); reloadClean(); return null; }
            return response.ok ? response.json() : null;
          })
          .then(function (body) { if (body && update(body)) clearInterval(polling); })
          .catch(function () { /* offline for a moment: the next tick tries again */ });
      }, 2000);
    }

    if (!window.EventSource) { poll(); return; }
    var url = "/orders/" + id + "/events" + (confirming ? "?until=paid" : "");
    var source = new EventSource(url);
    source.onmessage = function (event) {
      if (update(JSON.parse(event.data))) source.close();
    };
    source.addEventListener("end", function () { source.close(); if (confirming) poll(); });
    source.addEventListener("gone", function () { source.close(); reloadClean(); });
    source.onerror = function () {
      // The stream broke (a proxy that buffers, a dropped connection): poll instead.
      source.close();
      poll();
    };
  }

  // The enlarged view: every preview of the order in page order, stepped
  // through with the buttons, the arrow keys or a swipe; Escape closes it.
  function setupViewer() {
    var dialog = $("[data-viewer]");
    if (!dialog || typeof dialog.showModal !== "function") return;
    var image = $("[data-viewer-image]", dialog);
    var caption = $("[data-viewer-caption]", dialog);
    var steps = $all("[data-viewer-step]", dialog);
    var links = [];
    var at = 0;
    var opener = null;

    function show(index) {
      links = $all("[data-enlarge]");
      if (!links.length) { dialog.close(); return; }
      at = (index + links.length) % links.length;
      var link = links[at];
      var thumb = $("img", link);
      image.src = link.href;
      image.alt = thumb ? thumb.alt : "";
      caption.textContent = link.getAttribute("data-caption") + " · " + (at + 1) + " of " + links.length;
      steps.forEach(function (button) { button.hidden = links.length < 2; });
    }

    document.addEventListener("click", function (event) {
      var link = event.target.closest && event.target.closest("[data-enlarge]");
      if (!link) return;
      event.preventDefault();
      opener = link;
      show($all("[data-enlarge]").indexOf(link));
      dialog.showModal();
    });
    steps.forEach(function (button) {
      button.addEventListener("click", function () {
        show(at + parseInt(button.getAttribute("data-viewer-step"), 10));
      });
    });
    dialog.addEventListener("keydown", function (event) {
      if (event.key === "ArrowRight") { event.preventDefault(); show(at + 1); }
      if (event.key === "ArrowLeft") { event.preventDefault(); show(at - 1); }
    });
    var touchX = null;
    image.addEventListener("touchstart", function (event) { touchX = event.touches[0].clientX; }, { passive: true });
    image.addEventListener("touchend", function (event) {
      if (touchX === null) return;
      var moved = event.changedTouches[0].clientX - touchX;
      touchX = null;
      if (Math.abs(moved) > 40) show(at + (moved < 0 ? 1 : -1));
    });
    dialog.addEventListener("click", function (event) { if (event.target === dialog) dialog.close(); });
    dialog.addEventListener("close", function () {
      var current = links[at] || opener;
      if (current) current.focus();
    });
  }

  // --- the organiser's page: copy the invite link ------------------------------
  function setupCopy(button) {
    var source = $("[data-copy-source]");
    var status = $("[data-copy-status]");
    button.addEventListener("click", function () {
      source.select();
      var done = function () { status.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(source.value).then(done, function () {
          status.textContent = "Select the link and copy it.";
        });
      } else {
        // Plain http (a laptop, a test): the older command still copies a selection.
        document.execCommand("copy");
        done();
      }
    });
  }

  // --- a private link: the secret after '#' opens the order in this browser --------
  function setupOpenLink(form) {
    var secret = window.location.hash.slice(1);
    // Out of the address bar (and its history) at once.
    history.replaceState(null, "", window.location.pathname);
    if (!secret) {
      $("[data-open-status]", form).textContent =
        "This link is incomplete: copy the whole private link from your order page.";
      return;
    }
    $("[data-link-secret]", form).value = secret;
    form.submit();
  }

  document.addEventListener("DOMContentLoaded", function () {
    $all("[data-open-link]").forEach(setupOpenLink);
    $all("[data-copy]").forEach(setupCopy);
    $all("[data-upload]").forEach(setupUpload);
    $all("[data-choose]").forEach(setupChoose);
    $all("[data-order]").forEach(setupOrder);
    setupViewer();
  });
})();
