// What the engine answers for each sample of src/contract.samples.ts, read live from `base`
// (an engine serving fixtures/demo). Used by capture-samples.mjs and the browser test.

/** The first `requests` batch of `/_fn/events` holding a call of `path` made once the stream is
 * open, cut to that call (`{type: 'requests', requests: [summary], left_out}`). */
export async function requestEvent(base, path) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 15_000);
  try {
    const resp = await fetch(`${base}/_fn/events`, { signal: ctl.signal });
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    void fetch(base + path).then((r) => r.text());
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('event stream ended');
      buf += value;
      const lines = buf.split('\n');
      buf = lines.pop();
      for (const line of lines) {
        if (!line.startsWith('data:')) continue;
        const e = JSON.parse(line.slice(5));
        const hit = e.type === 'requests' ? e.requests.find((r) => r.path === path) : undefined;
        if (hit) return { ...e, requests: [hit] };
      }
    }
  } finally {
    clearTimeout(timer);
    ctl.abort();
  }
}

/** Sample name → live JSON. */
export async function liveJson(base) {
  const get = async (p) => (await fetch(base + p)).json();
  // /debug/whoami prints a line, so the runtime log has an entry of handler output.
  const requestEventSample = await requestEvent(base, '/debug/whoami');
  let logs;
  for (let i = 0; i < 30; i++) {
    logs = await get('/_fn/logs?file=runtime&format=json&lines=1&fn=debug/whoami.js');
    if (logs.entries?.length) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    healthSample: await get('/_fn/health'),
    catalogSample: await get('/_fn/catalog'),
    resolve404Sample: await get('/_fn/resolve?method=POST&url=/users/42'),
    resolve200Sample: await get('/_fn/resolve?method=GET&url=/users/42'),
    // The dashboard reads only `entries` (the rest is the original's text-log answer).
    logsSample: { entries: logs.entries },
    requestEventSample,
  };
}
