// What the interop scripts (chat_v3.js, fabric_v28.js) share: waiting for an event, and
// ending with one JSON report on stdout that tests/interop/test_signalwire_js.py reads.

// Resolves once predicate() is true; rejects naming `what` after `ms` milliseconds.
function until(predicate, what, ms = 5000) {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (predicate()) return resolve();
      if (Date.now() - started > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

// Runs main(); prints `report` either way (with `fatal` when main failed, exit status 1), so a
// failing run still shows how far the client got.
function run(main, report) {
  main()
    .then(() => {
      process.stdout.write(JSON.stringify(report) + "\n");
      process.exit(0);
    })
    .catch((error) => {
      report.fatal = String((error && (error.stack || error.message)) || JSON.stringify(error));
      process.stdout.write(JSON.stringify(report) + "\n");
      process.exit(1);
    });
}

module.exports = { until, run };
