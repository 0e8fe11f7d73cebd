// First import of the bench's Node processes (router-proc, sdk-host, loadgen), which load the rest
// of their modules dynamically afterwards, as the `nullport` launcher does for `router run` /
// `tunnel run` (packages/cli/bin/nullport.js) and as `node --import @nullport/sdk/tune-gc app.js`
// does for SDK apps that opt in. Off unless NULLPORT_GC_TUNING=on (`bench/run.mjs --gc-tuning`).
import { gcTuningRequested, tuneGcForThroughput } from '../../packages/protocol/dist/src/gc.js'

if (gcTuningRequested()) tuneGcForThroughput()
