// Parse many .fbp sources with the reference parser (npm fbp 1.8.0) in one node process.
// stdin: {"<name>": {"source": "...", "caseSensitive": false}, ...}
// stdout: {"<name>": {"graph": {...}} or {"error": "..."}, ...}
"use strict";
const fbp = require(process.argv[2]);
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const jobs = JSON.parse(input);
  const results = {};
  for (const name of Object.keys(jobs)) {
    const job = jobs[name];
    try {
      results[name] = { graph: fbp.parse(job.source, { caseSensitive: !!job.caseSensitive }) };
    } catch (err) {
      results[name] = { error: String(err.message) };
    }
  }
  process.stdout.write(JSON.stringify(results));
});
