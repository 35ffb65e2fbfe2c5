// storyreel studio: takes play while the pointer is over them; in the live studio, Pick,
// Another take and Run write through the API, and Server-Sent Events keep the page current.
"use strict";
(() => {
  const live = document.body.dataset.mode === "live";

  // Hover to play, as in an editor's bin: muted takes start under the pointer, stop off it.
  document.addEventListener("mouseover", (event) => {
    const video = event.target.closest?.(".take video");
    if (video && !video.contains(event.relatedTarget)) video.play().catch(() => {});
  });
  document.addEventListener("mouseout", (event) => {
    const video = event.target.closest?.(".take video");
    if (video && !video.contains(event.relatedTarget)) video.pause();
  });

  if (!live) return;

  const token = document.querySelector('meta[name="studio-token"]').content;
  const toast = document.getElementById("toast");
  let toastTimer = 0;

  function say(message) {
    toast.textContent = message;
    toast.classList.add("show");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => toast.classList.remove("show"), 6000);
  }

  async function post(url, body) {
    const answer = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Studio-Token": token },
      body: JSON.stringify(body),
    });
    const data = await answer.json().catch(() => ({}));
    return { ok: answer.ok, status: answer.status, data };
  }

  // Refresh: the same page fetched again; the board and the costs are swapped in place.
  let refreshing = null;
  let again = false;
  async function refresh() {
    if (refreshing) { again = true; return refreshing; }
    refreshing = (async () => {
      do {
        again = false;
        const answer = await fetch(location.pathname + location.search, { headers: { Accept: "text/html" } });
        if (!answer.ok) continue;
        const page = new DOMParser().parseFromString(await answer.text(), "text/html");
        swap(page, "board");
        swap(page, "costs");
        document.title = page.title;
      } while (again);
    })().finally(() => { refreshing = null; });
    return refreshing;
  }

  function swap(page, id) {
    const fresh = page.getElementById(id);
    const old = document.getElementById(id);
    if (!fresh || !old) return;
    // Keep the log of this run: it lives in the page, not on the server.
    const log = id === "board" ? document.getElementById("log") : null;
    old.replaceWith(fresh);
    if (log) document.getElementById("log").replaceWith(log);
  }

  async function act(url, body) {
    const { ok, data } = await post(url, body);
    if (!ok) { say(data.error || "the studio refused"); return false; }
    await refresh();
    return true;
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button");
    if (!button || button.disabled) return;
    if (button.classList.contains("pick")) {
      button.disabled = true;
      await act("/api/pick", { shot: button.dataset.shot, take: Number(button.dataset.take) });
    } else if (button.classList.contains("reroll")) {
      button.disabled = true;
      await act("/api/reroll", { shot: button.dataset.shot });
    } else if (button.id === "run") {
      await startRun(null);
    } else if (button.id === "stop") {
      button.disabled = true;
      const { ok, data } = await post("/api/stop", {});
      if (!ok) { button.disabled = false; say(data.error || "the run did not stop"); }
    }
  });

  // Run: a run that costs money is confirmed first, with the estimate the server has now.
  async function startRun(confirmed) {
    if (confirmed === null && document.body.dataset.backend === "runware") {
      const board = await (await fetch("/api/board")).json();
      if (board.estimate > 0 || board.unpriced.length) return askToSpend(board);
    }
    const { ok, status, data } = await post("/api/run", confirmed === null ? {} : { confirm: confirmed });
    if (ok) return;
    if (status === 409 && data.needs_confirmation) return askToSpend(data);
    say(data.error || "the run did not start");
  }

  function askToSpend(data) {
    const dialog = document.getElementById("confirm");
    const shots = `${data.to_run} shot${data.to_run === 1 ? "" : "s"}`;
    const unknown = data.unpriced.length ? `, plus ${data.unpriced.length} at a price no one has published` : "";
    dialog.querySelector(".confirm-text").textContent =
      `${shots} to render on Runware, estimated $${data.estimate.toFixed(3)}${unknown}.`;
    dialog.querySelector("#confirm-run").textContent = `Run for $${data.estimate.toFixed(2)}`;
    dialog.onclose = () => { if (dialog.returnValue === "run") startRun(data.estimate); };
    dialog.showModal();
  }

  function setStatus(key, status) {
    const kind = ["cached", "done"].includes(status) ? "ok"
      : ["failed", "skipped"].includes(status) ? "bad"
      : ["queued", "waiting", "extracting", "uploading", "submitted", "rendering", "downloading"].includes(status) ? "busy"
      : "will";
    for (const chip of document.querySelectorAll("[data-status-for]")) {
      if (chip.dataset.statusFor !== key) continue;
      chip.textContent = status;
      chip.className = `chip ${kind}`;
    }
  }

  function log(text, bad) {
    const list = document.getElementById("log");
    const line = document.createElement("li");
    const time = new Date().toLocaleTimeString([], { hour12: false });
    line.textContent = `${time}  ${text}`;
    if (bad) line.className = "bad";
    list.append(line);
    list.scrollTop = list.scrollHeight;
  }

  function setRunning(running) {
    const button = document.getElementById("run");
    if (!button) return;
    button.disabled = running;
    button.textContent = running ? "Running…" : "Run";
    const stop = document.getElementById("stop");
    if (stop) { stop.hidden = !running; stop.disabled = false; }
  }

  const events = new EventSource("/api/events");
  events.addEventListener("job", (event) => {
    const job = JSON.parse(event.data);
    for (const key of job.keys) setStatus(key, job.status);
    if (job.status === "failed") log(`${job.keys[0]}: failed: ${job.error}`, true);
    else if (["done", "rendering"].includes(job.status)) log(`${job.keys[0]}: ${job.status}`);
  });
  events.addEventListener("note", (event) => log(JSON.parse(event.data).message));
  events.addEventListener("run", (event) => {
    const run = JSON.parse(event.data);
    if (run.state === "started") { setRunning(true); log(`run started (${run.backend})`); return; }
    setRunning(false);
    if (run.state === "failed") { log(run.message, true); say(run.message); }
    else if (run.state === "stopped") log(run.message);
    else log(run.complete ? `run finished · $${run.cost.toFixed(3)}` : "run finished incomplete: see the failed shots", !run.complete);
    refresh();
  });
  // A run moves files many times a second; one look at the settled state is enough.
  let settle = 0;
  events.addEventListener("board", () => { clearTimeout(settle); settle = setTimeout(refresh, 300); });
  events.addEventListener("hello", (event) => setRunning(JSON.parse(event.data).running));
})();
