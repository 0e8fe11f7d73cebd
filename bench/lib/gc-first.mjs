// First import of the bench's Node processes (router-proc, sdk-host, loadgen), which load the rest
// of their modules dynamically afterwards, as the `nullport` launcher does for `router run` /
// `tunnel run` (packages/cli/bin/nullport.js) and as `node --import @nullport/sdk/tune-gc app.js`
// does for SDK apps that follow the docs. `bench/run.mjs --no-gc-tuning` sets
// NULLPORT_GC_TUNING=off in the environment, which turns it off everywhere.
import '../../packages/sdk/dist/src/tune-gc.js'
