// GaitID web console: a client of the /v1 API, nothing more. The API key lives in sessionStorage
// (gone when the tab closes) and goes out as X-API-Key; pictures and videos are fetched with it and
// shown from object URLs, since <img src> cannot send a header. Text from the server is always set
// as text (never as HTML), so a subject's name cannot inject markup.
"use strict";

const KEY = "gaitid.apiKey";
const POLL_MS = 700;
const PAGE = 20;
const main = document.getElementById("main");
const statusLine = document.getElementById("status");
let leavePage = () => {};  // the current page's clean-up (object URLs, the event stream)

// ---- small helpers ----------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function say(message, isError = false) {
  statusLine.textContent = message;
  statusLine.classList.toggle("error", isError);
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
// one decimal, rounded down: thresholds sit near 99.7 %, and "100%" would claim certainty
const percent = (x) => `${(Math.floor(1000 * x) / 10).toFixed(1)}%`;
const when = (iso) => (iso ? new Date(iso.endsWith("Z") || iso.includes("+") ? iso : `${iso}Z`).toLocaleString() : "");

function who(subject) {
  if (!subject) return "deleted subject";
  return subject.name || subject.external_id || subject.id.slice(0, 8);
}

class ApiError extends Error {
  constructor(status, error) {
    super(error && error.message ? error.message : `the server answered ${status}`);
    this.status = status;
    this.code = error && error.code;
  }
}

// ---- the API ------------------------------------------------------------------------------------

const api = {
  key: () => sessionStorage.getItem(KEY),

  async request(method, path, json) {
    const headers = { "X-API-Key": api.key() || "" };
    const init = { method, headers };
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    }
    const response = await fetch(path, init);
    const type = response.headers.get("content-type") || "";
    const body = type.includes("application/json") ? await response.json() : null;
    if (!response.ok) {
      if (response.status === 401) signOut("Your API key was refused; sign in again.");
      throw new ApiError(response.status, body && body.error);
    }
    return body;
  },

  get: (path) => api.request("GET", path),

  // A picture or video the API serves, as an object URL the page can show; freed when the page changes.
  async objectUrl(path, urls) {
    if (!path.startsWith("/v1/")) throw new ApiError(0, { message: "not an API path" });  // the key goes to the API only
    const response = await fetch(path, { headers: { "X-API-Key": api.key() || "" } });
    if (!response.ok) throw new ApiError(response.status, null);
    const url = URL.createObjectURL(await response.blob());
    urls.push(url);
    return url;
  },

  // Upload a file as multipart/form-data, reporting the bytes sent; resolves with the JSON answer.
  upload(path, file, onProgress) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open("POST", path);
      request.setRequestHeader("X-API-Key", api.key() || "");
      request.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
      request.onerror = () => reject(new ApiError(0, { message: "the upload failed: is the server reachable?" }));
      request.onload = () => {
        let body = null;
        try { body = JSON.parse(request.responseText); } catch { /* not JSON: reported below */ }
        if (request.status >= 200 && request.status < 300) resolve(body);
        else reject(new ApiError(request.status, body && body.error));
      };
      const form = new FormData();
      form.append("file", file, file.name);
      request.send(form);
    });
  },

  // Poll a job until it ends, reporting its stage and progress.
  async finished(job, onProgress) {
    while (job.status === "queued" || job.status === "running") {
      onProgress(job);
      await sleep(POLL_MS);
      job = await api.get(`/v1/jobs/${job.id}`);
    }
    return job;
  },
};

// ---- pictures -------------------------------------------------------------------------------------

function picture(path, alt, className, urls) {
  const img = h("img", { alt, class: className });
  if (path) api.objectUrl(path, urls).then((url) => { img.src = url; }, () => { img.alt = `${alt} (not available)`; });
  else img.alt = `${alt} (not kept)`;
  return img;
}

// ---- a job's progress, shown while it runs ----------------------------------------------------------

function progressPanel(label) {
  const bar = h("progress", { max: "1", value: "0", "aria-label": label });
  const text = h("span", { class: "muted" });
  return {
    node: h("div", { class: "row" }, bar, text),
    uploading(share) { bar.value = share * 0.1; text.textContent = `uploading ${percent(share)}`; },
    job(job) { bar.value = 0.1 + 0.9 * job.progress; text.textContent = `${job.stage} ${percent(job.progress)}`; },
    done(message) { bar.value = 1; text.textContent = message; },
  };
}

async function runUpload(path, file, panel) {
  let job = await api.upload(path, file, (share) => panel.uploading(share));
  job = await api.finished(job, (j) => panel.job(j));
  if (job.status !== "succeeded") {
    const reason = job.error ? `${job.error.message} (${job.error.code})` : job.status;
    throw new ApiError(422, { message: `the job ${job.status}: ${reason}` });
  }
  panel.done("done");
  return job;
}

// ---- one identified track -------------------------------------------------------------------------

function trackCard(track, urls) {
  const title = track.decision === "match" ? who(track.subject) : track.decision === "unknown" ? "Unknown person" : "Too short to tell";
  const confidence = track.confidence !== null && track.confidence !== undefined ? `confidence ${percent(track.confidence)}` : "";
  const score = track.score !== null && track.score !== undefined ? `similarity ${track.score.toFixed(3)}` : "";
  return h("article", { class: "card", "data-track": track.track_id, "data-decision": track.decision },
    picture(track.thumbnail, `person of track ${track.track_id}`, "person", urls),
    h("h3", {}, title),
    h("p", {}, h("span", { class: `badge ${track.decision}` }, track.decision), " ", h("span", { class: "muted" }, [confidence, score].filter(Boolean).join(" · "))),
    h("p", { class: "muted" }, `track ${track.track_id} · ${track.start_s.toFixed(1)}–${track.end_s.toFixed(1)} s · ${track.good_frames} good frames`),
    track.usable ? null : h("p", { class: "muted" }, `not usable: ${track.reason}`),
    track.candidates && track.candidates.length
      ? h("details", {}, h("summary", {}, "Closest subjects"),
          h("ol", { class: "candidates" }, track.candidates.map((c) =>
            h("li", {}, `${who(c.subject)} — ${c.confidence !== null ? percent(c.confidence) : c.score.toFixed(3)}`))))
      : null,
    h("details", {}, h("summary", {}, "Silhouettes"), picture(track.contact_sheet, `silhouettes of track ${track.track_id}`, "sheet", urls)),
  );
}

function identifyResult(job, urls) {
  const result = job.result;
  const answered = result.tracks.filter((t) => t.decision !== "insufficient").length;
  const video = h("video", { controls: true, preload: "metadata", "aria-label": "the video with each person's answer drawn on it" });
  if (result.annotated_video) api.objectUrl(result.annotated_video, urls).then((url) => { video.src = url; });
  return h("section", { "aria-label": "identification result", id: "identify-result" },
    h("h2", {}, `${result.tracks.length} ${result.tracks.length === 1 ? "person" : "people"} seen, ${answered} answered`),
    result.truncated ? h("p", { class: "error" }, "The video ended early (damaged or cut off): later frames were not seen.") : null,
    result.annotated_video ? video : h("p", { class: "muted" }, "No annotated video was kept."),
    h("div", { class: "cards" }, result.tracks.map((t) => trackCard(t, urls))),
    h("p", { class: "muted" }, `model ${result.model} · threshold ${result.threshold}`),
  );
}

// ---- pages ----------------------------------------------------------------------------------------

function signIn() {
  document.getElementById("nav").hidden = true;
  const input = h("input", { type: "password", id: "api-key", name: "api-key", autocomplete: "off", required: true });
  const form = h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, input.value.trim());
    try {
      await api.get("/v1/subjects?limit=1");
      say("Signed in.");
      location.hash = "#/gallery";
    } catch (error) {
      sessionStorage.removeItem(KEY);
      say(error.status === 401 || error.status === 403 ? "That key was refused." : error.message, true);
    }
  } }, h("label", { for: "api-key" }, "API key", input), h("button", { type: "submit" }, "Sign in"));
  main.replaceChildren(
    h("h1", {}, "Sign in"),
    h("p", {}, "Paste an API key (gid_…). It stays in this browser tab only. An admin makes keys with ",
      h("code", {}, "gaitid keys create"), "."),
    form,
  );
  input.focus();
}

function signOut(message) {
  sessionStorage.removeItem(KEY);
  say(message || "Signed out.");
  location.hash = "#/signin";
}

async function gallery(urls, params, stale) {
  const offset = Number(params.get("offset") || 0);
  const name = params.get("name") || "";
  const search = h("input", { type: "search", id: "subject-search", name: "name", value: name });
  const page = await api.get(`/v1/subjects?limit=${PAGE}&offset=${offset}${name ? `&name=${encodeURIComponent(name)}` : ""}`);
  if (stale()) return;
  const rows = page.items.map((subject) => subjectRow(subject, urls));
  const go = (to) => { location.hash = `#/gallery?offset=${to}${name ? `&name=${encodeURIComponent(name)}` : ""}`; };
  main.replaceChildren(
    h("h1", {}, "Gallery"),
    h("form", { class: "inline", role: "search", onsubmit: (e) => {
      e.preventDefault();
      location.hash = `#/gallery?name=${encodeURIComponent(search.value.trim())}`;
    } }, h("label", { for: "subject-search" }, "Name contains", search), h("button", { type: "submit", class: "secondary" }, "Search")),
    h("p", { class: "muted" }, `${page.total} ${page.total === 1 ? "subject" : "subjects"}`),
    h("table", { class: "responsive", id: "subjects" },
      h("thead", {}, h("tr", {}, ["Name", "External id", "Walks", "Created", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.flat())),
    h("div", { class: "pager" },
      h("button", { type: "button", class: "secondary", disabled: offset === 0, onclick: () => go(Math.max(0, offset - PAGE)) }, "Previous"),
      h("span", { class: "muted" }, page.total ? `${offset + 1}–${offset + page.items.length} of ${page.total}` : ""),
      h("button", { type: "button", class: "secondary", disabled: offset + PAGE >= page.total, onclick: () => go(offset + PAGE) }, "Next")),
  );
}

function subjectRow(subject, urls) {
  const nameCell = h("td", { "data-label": "Name" }, subject.name || h("span", { class: "muted" }, "(no name)"));
  const walks = h("tr", { hidden: true }, h("td", { colspan: "5" }));
  const row = h("tr", { "data-subject": subject.id },
    nameCell,
    h("td", {}, subject.external_id || ""),
    h("td", {}, String(subject.sequences)),
    h("td", {}, when(subject.created_at)),
    h("td", {},
      h("div", { class: "row" },
        h("button", { type: "button", class: "secondary", "aria-expanded": "false", onclick: (e) => toggleWalks(e.target, subject, walks, urls) }, "Walks"),
        h("button", { type: "button", class: "secondary", onclick: () => rename(nameCell, subject) }, "Rename"),
        h("button", { type: "button", class: "danger", onclick: () => remove(subject) }, "Delete"))),
  );
  return [row, walks];
}

async function toggleWalks(button, subject, row, urls) {
  const open = row.hidden;
  row.hidden = !open;
  button.setAttribute("aria-expanded", String(open));
  if (!open) return;
  const page = await api.get(`/v1/subjects/${subject.id}/sequences?limit=100`);
  row.firstChild.replaceChildren(
    page.items.length ? h("div", { class: "sequences" }, page.items.map((s) =>
      h("figure", { class: "card" },
        picture(s.contact_sheet, `silhouettes of walk ${s.id}`, "sheet", urls),
        h("figcaption", { class: "muted" }, `walk ${s.id} · ${s.frames} frames · ${s.model} · ${when(s.created_at)}`))))
      : h("p", { class: "muted" }, "No walks enrolled yet."));
}

function rename(cell, subject) {
  const input = h("input", { type: "text", value: subject.name, "aria-label": `new name for ${who(subject)}`, maxlength: "200" });
  cell.replaceChildren(h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api.request("PATCH", `/v1/subjects/${subject.id}`, { name: input.value.trim() });
      say(`Renamed to ${input.value.trim()}.`);
      route();
    } catch (error) { say(error.message, true); }
  } }, input, h("button", { type: "submit" }, "Save")));
  input.focus();
}

async function remove(subject) {
  if (!confirm(`Delete ${who(subject)} and every enrolled walk?`)) return;
  try {
    await api.request("DELETE", `/v1/subjects/${subject.id}`);
    say(`Deleted ${who(subject)}.`);
    route();
  } catch (error) { say(error.message, true); }
}

function identify(urls) {
  const file = h("input", { type: "file", id: "identify-file", accept: "video/*", required: true });
  const panel = progressPanel("identification progress");
  const results = h("div", {});
  const button = h("button", { type: "submit" }, "Identify");
  main.replaceChildren(
    h("h1", {}, "Identify"),
    h("p", {}, "Upload a video: everyone walking through it is compared with the gallery."),
    h("form", { class: "inline", onsubmit: async (e) => {
      e.preventDefault();
      button.disabled = true;
      results.replaceChildren(panel.node);
      try {
        const job = await runUpload("/v1/identify?annotate=true", file.files[0], panel);
        results.replaceChildren(identifyResult(job, urls));
        say("Identification finished.");
      } catch (error) {
        say(error.message, true);
      } finally {
        button.disabled = false;
      }
    } }, h("label", { for: "identify-file" }, "Video", file), button),
    results,
  );
}

function enroll(urls) {
  const file = h("input", { type: "file", id: "enroll-file", accept: "video/*", required: true });
  const panel = progressPanel("preview progress");
  const step2 = h("div", {});
  main.replaceChildren(
    h("h1", {}, "Enroll a group"),
    h("p", {}, "Upload a video once: every walking person is shown; name those to enroll and enroll them together."),
    h("form", { class: "inline", onsubmit: async (e) => {
      e.preventDefault();
      step2.replaceChildren(panel.node);
      try {
        const preview = await runUpload("/v1/previews", file.files[0], panel);
        const subjects = await api.get("/v1/subjects?limit=500");
        step2.replaceChildren(previewForm(preview, subjects.items, urls));
        say(`${preview.result.tracks.filter((t) => t.usable).length} people can be enrolled.`);
      } catch (error) {
        say(error.message, true);
      }
    } }, h("label", { for: "enroll-file" }, "Video", file), h("button", { type: "submit" }, "Find people")),
    step2,
  );
}

function previewForm(preview, subjects, urls) {
  const choices = [];
  const cards = preview.result.tracks.map((track) => {
    const id = `t${track.track_id}`;
    if (!track.usable) {
      return h("article", { class: "card", "data-track": track.track_id },
        picture(track.thumbnail, `person of track ${track.track_id}`, "person", urls),
        h("h3", {}, `Track ${track.track_id}`), h("p", { class: "muted" }, `not usable: ${track.reason}`));
    }
    const include = h("input", { type: "checkbox", id: `${id}-include`, checked: true });
    const name = h("input", { type: "text", id: `${id}-name`, maxlength: "200" });
    const external = h("input", { type: "text", id: `${id}-external`, maxlength: "200" });
    const existing = h("select", { id: `${id}-subject` }, h("option", { value: "" }, "a new subject"),
      subjects.map((s) => h("option", { value: s.id }, `${who(s)}${s.external_id ? ` (${s.external_id})` : ""}`)));
    choices.push({ track, include, name, external, existing });
    return h("article", { class: "card", "data-track": track.track_id },
      picture(track.thumbnail, `person of track ${track.track_id}`, "person", urls),
      h("h3", {}, `Track ${track.track_id}`),
      h("p", { class: "muted" }, `${track.start_s.toFixed(1)}–${track.end_s.toFixed(1)} s · ${track.good_frames} good frames`),
      h("label", { for: `${id}-include`, class: "row" }, include, "Enroll this person"),
      h("label", { for: `${id}-name` }, "Name", name),
      h("label", { for: `${id}-external` }, "External id (optional)", external),
      h("label", { for: `${id}-subject` }, "Add to", existing),
      h("details", {}, h("summary", {}, "Silhouettes"), picture(track.contact_sheet, `silhouettes of track ${track.track_id}`, "sheet", urls)));
  });
  const outcome = h("div", { id: "enroll-outcome" });
  const submit = h("button", { type: "submit" }, "Enroll the selected people");
  return h("form", { onsubmit: async (e) => {
    e.preventDefault();
    const people = choices.filter((c) => c.include.checked).map((c) => c.existing.value
      ? { track_id: c.track.track_id, subject_id: c.existing.value }
      : { track_id: c.track.track_id, name: c.name.value.trim(), ...(c.external.value.trim() ? { external_id: c.external.value.trim() } : {}) });
    if (!people.length) { say("Select at least one person.", true); return; }
    submit.disabled = true;
    const panel = progressPanel("enrollment progress");
    outcome.replaceChildren(panel.node);
    try {
      let job = await api.request("POST", "/v1/enrollments", { preview_job_id: preview.id, people });
      job = await api.finished(job, (j) => panel.job(j));
      if (job.status !== "succeeded") throw new ApiError(422, job.error);
      panel.done("done");
      outcome.replaceChildren(h("p", {}, `Enrolled ${job.result.enrolled.length} ${job.result.enrolled.length === 1 ? "person" : "people"}. `,
        h("a", { href: "#/gallery" }, "See the gallery")));
      say(`Enrolled ${job.result.enrolled.length} people.`);
    } catch (error) {
      submit.disabled = false;
      say(error.message, true);
    }
  } }, h("div", { class: "cards" }, cards), submit, outcome);
}

async function streams(urls, params, stale) {
  const page = await api.get("/v1/streams?limit=100");
  if (stale()) return undefined;
  const events = h("ul", { class: "events", id: "events", "aria-live": "polite" });
  const state = h("span", { class: "muted", id: "events-state" }, "connecting…");
  main.replaceChildren(
    h("h1", {}, "Streams"),
    page.items.length
      ? h("table", { class: "responsive", id: "streams" },
          h("thead", {}, h("tr", {}, ["Name", "State", "Frames/s in · out", "Last error"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, page.items.map((s) => h("tr", { "data-stream": s.id },
            h("td", {}, s.name || s.url), h("td", {}, s.status.state),
            h("td", {}, `${s.status.fps_in} · ${s.status.fps_out}`), h("td", {}, s.status.last_error || "")))))
      : h("p", { class: "muted" }, "No streams. An admin adds one with POST /v1/streams."),
    h("h2", {}, "Live events ", state),
    events,
  );
  const show = (event) => {
    const title = event.decision === "match" ? who(event.subject) : "Unknown person";
    events.prepend(h("li", { class: "event", "data-event": event.id, "data-decision": event.decision },
      picture(event.snapshot, `snapshot of event ${event.id}`, "", urls),
      h("div", {},
        h("strong", {}, title), " ", h("span", { class: `badge ${event.decision}` }, event.decision),
        h("div", { class: "muted" }, `${event.stream.name || "stream"} · track ${event.track_id} · ${when(event.created_at)}`
          + (event.confidence !== null ? ` · confidence ${percent(event.confidence)}` : "")))));
    while (events.children.length > 100) events.lastChild.remove();
  };
  const recent = await api.get("/v1/events?limit=10");
  if (stale()) return undefined;
  recent.items.slice().reverse().forEach(show);
  const stop = new AbortController();
  followEvents(show, (text) => { state.textContent = text; }, stop.signal);
  return () => stop.abort();
}

// Server-Sent Events over fetch (EventSource cannot send the API key header), reconnecting with Last-Event-ID.
async function followEvents(onEvent, onState, signal) {
  let last = null;
  while (!signal.aborted) {
    try {
      const headers = { "X-API-Key": api.key() || "", Accept: "text/event-stream" };
      if (last) headers["Last-Event-ID"] = last;
      const response = await fetch("/v1/events/stream", { headers, signal });
      if (response.status === 401 || response.status === 403) {
        signOut("Your API key was refused; sign in again.");
        return;
      }
      if (!response.ok) throw new ApiError(response.status, null);
      onState("live");
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = { data: [] };
          for (const line of message.split("\n")) {
            const colon = line.indexOf(":");
            if (colon <= 0) continue;  // a comment (keep-alive) or a blank line
            const name = line.slice(0, colon);
            const value = line.slice(colon + 1).replace(/^ /, "");
            if (name === "data") fields.data.push(value); else fields[name] = value;
          }
          if (fields.id) last = fields.id;
          if (fields.event === "identification" && fields.data.length) onEvent(JSON.parse(fields.data.join("\n")));
          if (fields.event === "error") {  // the key was revoked: the server ends the stream for good
            signOut("Your API key was revoked; sign in with another.");
            return;
          }
        }
      }
    } catch (error) {
      if (signal.aborted) return;
    }
    onState("reconnecting…");
    await sleep(2000);
  }
}

async function jobs(urls, params, stale) {
  const offset = Number(params.get("offset") || 0);
  const page = await api.get(`/v1/jobs?limit=${PAGE}&offset=${offset}`);
  if (stale()) return;
  const detail = h("div", { id: "job-detail" });
  const show = async (job) => {
    const full = await api.get(`/v1/jobs/${job.id}`);
    if (full.status !== "succeeded") {
      detail.replaceChildren(h("p", {}, `Job ${full.id} ${full.status}${full.error ? `: ${full.error.message} (${full.error.code})` : ""}`));
    } else if (full.kind === "identify") {
      detail.replaceChildren(identifyResult(full, urls));
    } else if (full.kind === "preview") {
      detail.replaceChildren(h("div", { class: "cards" }, full.result.tracks.map((t) => h("article", { class: "card" },
        picture(t.thumbnail, `person of track ${t.track_id}`, "person", urls),
        h("h3", {}, `Track ${t.track_id}`), h("p", { class: "muted" }, t.usable ? `${t.good_frames} good frames` : t.reason)))));
    } else {
      const enrolled = full.kind === "enroll" ? [full.result] : full.result.enrolled;
      detail.replaceChildren(h("p", {}, `Enrolled ${enrolled.length} walk(s): `,
        enrolled.map((e) => `sequence ${e.sequence_id} of subject ${e.subject_id.slice(0, 8)}`).join(", ")));
    }
    detail.focus();
  };
  main.replaceChildren(
    h("h1", {}, "Jobs"),
    h("table", { class: "responsive", id: "jobs" },
      h("thead", {}, h("tr", {}, ["Kind", "Status", "Progress", "Created", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, page.items.map((job) => h("tr", { "data-job": job.id },
        h("td", {}, job.kind), h("td", {}, job.status), h("td", {}, `${job.stage} ${percent(job.progress)}`),
        h("td", {}, when(job.created_at)),
        h("td", {}, h("button", { type: "button", class: "secondary", onclick: () => show(job) }, "Show")))))),
    h("div", { class: "pager" },
      h("button", { type: "button", class: "secondary", disabled: offset === 0, onclick: () => { location.hash = `#/jobs?offset=${Math.max(0, offset - PAGE)}`; } }, "Newer"),
      h("span", { class: "muted" }, page.total ? `${offset + 1}–${offset + page.items.length} of ${page.total}` : "No jobs yet."),
      h("button", { type: "button", class: "secondary", disabled: offset + PAGE >= page.total, onclick: () => { location.hash = `#/jobs?offset=${offset + PAGE}`; } }, "Older")),
    detail,
  );
  detail.tabIndex = -1;
}

// ---- routing ----------------------------------------------------------------------------------------

const PAGES = { "/gallery": gallery, "/identify": identify, "/enroll": enroll, "/streams": streams, "/jobs": jobs };

let navigation = 0;  // a page still loading when the user moves on must not draw over the next one

async function route() {
  if (location.hash && !location.hash.startsWith("#/")) return;  // an in-page link (skip to content)
  const current = ++navigation;
  leavePage();
  leavePage = () => {};
  const [path, query] = (location.hash.slice(1) || "/gallery").split("?");
  if (!api.key() || path === "/signin") {
    signIn();
    return;
  }
  const page = PAGES[path] || gallery;
  document.getElementById("nav").hidden = false;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.getAttribute("href") === `#${path}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const urls = [];
  const free = (cleanUp) => {
    if (typeof cleanUp === "function") cleanUp();
    urls.forEach((url) => URL.revokeObjectURL(url));
  };
  try {
    const cleanUp = await page(urls, new URLSearchParams(query || ""), () => current !== navigation);
    if (current !== navigation) {  // the user went elsewhere meanwhile: this page's work is dropped
      free(cleanUp);
      return;
    }
    leavePage = () => free(cleanUp);
  } catch (error) {
    if (current === navigation) say(error.message, true);
  }
  document.title = `GaitID · ${main.querySelector("h1") ? main.querySelector("h1").textContent : "console"}`;
  main.focus();
}

document.getElementById("sign-out").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);
route();
