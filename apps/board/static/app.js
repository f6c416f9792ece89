// The book's Ajax: this page is a static file from the web tier; the data
// comes from the AP tier's REST API as JSON, and the list updates in place.
const list = document.getElementById("posts");
const status = document.getElementById("status");

function item(post) {
  const li = document.createElement("li");
  li.className = "card";
  const a = document.createElement("a");
  a.className = "title";
  a.href = "/posts/" + post.id;
  a.textContent = post.title;          // textContent: never HTML from data
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = "by " + post.author + " · " + String(post.created_at).slice(0, 16).replace("T", " ");
  li.append(a, meta);
  return li;
}

async function refresh() {
  const res = await fetch("/api/posts?order=id.desc&limit=20&select=id,title,author,created_at");
  if (!res.ok) { status.textContent = "Could not load posts (" + res.status + ")"; return; }
  const posts = await res.json();
  list.replaceChildren(...posts.map(item));
}

document.getElementById("new").addEventListener("submit", async (e) => {
  e.preventDefault();
  // Writes go through the same form route as the HTML page (its length
  // limits apply); the REST API itself is read-only. The answer is the
  // 303 to the new post, which fetch follows.
  const res = await fetch("/posts", {
    method: "POST",
    body: new URLSearchParams(new FormData(e.target)),
  });
  if (res.ok) {
    e.target.reset();
    status.textContent = "Posted.";
    await refresh();
  } else {
    const err = await res.json().catch(() => ({ error: res.statusText }));
    status.textContent = "Not posted: " + err.error;
  }
});

refresh();
setInterval(refresh, 5000);

// Self-test for the browser test (tests/browser.rs): with #selftest in the
// address, the page adds a post through its own form and reports in
// <body data-selftest> whether the post appeared without a reload.
if (location.hash === "#selftest") {
  const title = "selftest-" + Math.random().toString(36).slice(2, 10);
  const form = document.getElementById("new");
  form.title.value = title;
  form.author.value = "browser";
  form.body.value = "added by the browser test";
  const started = Date.now();
  const check = () => {
    const seen = [...list.querySelectorAll(".title")].some((a) => a.textContent === title);
    if (seen) {
      document.body.dataset.selftest = "passed:" + title;
    } else if (Date.now() - started > 8000) {
      document.body.dataset.selftest = "failed:" + title;
    } else {
      setTimeout(check, 100);
    }
  };
  form.requestSubmit();
  check();
}
