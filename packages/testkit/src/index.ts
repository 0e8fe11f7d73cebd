/**
 * @nullport/testkit: the one harness of Nullport's tests (private, never published).
 *
 * | module | what it gives |
 * |---|---|
 * | controller | spawnController (through the CLI or the controller package alone), runControllerToExit |
 * | router | startTestRouter (process or in-process), ensureAllRouterPolicies |
 * | network | startNetwork (one router), startLinkedNetwork (two linked routers) |
 * | entities | enrollIdentity, dialBindPolicies: entities made through a TestController |
 * | web-network, tunnel-network | the HTTP/zitify network, the tunneler network |
 * | host-app | a hosting SDK app as its own process |
 * | raw-client | RawClient: frames over TLS, without the SDK |
 * | fake-controller | FakeController: the fabric API in-process, for router tests |
 * | cli, command, tunneler | the CLI runner, any command to completion, `nullport tunnel` processes |
 * | wait-for | waitFor: the one polling wait |
 */
export { type CliEnv, type CliResult, cliEnv, failLine, type RunCliOptions, runCli } from './cli.js'
export { type CommandOptions, type CommandResult, runCommand } from './command.js'
export {
  type ApiOptions,
  runControllerToExit,
  type SpawnControllerOptions,
  spawnController,
  type TestController,
} from './controller.js'
export { dialBindPolicies, enrollIdentity } from './entities.js'
export { type Cred, FakeController, TD } from './fake-controller.js'
export { type HostEvent, type HostProcess, hostStream, spawnHost } from './host-app.js'
export { type ApiResponse, type HttpsJsonOptions, httpsJson } from './https-json.js'
export {
  type LoggedProcess,
  type LoggedProcessOptions,
  type LogLine,
  spawnLogged,
  trackChild,
} from './logged-process.js'
export {
  type NetworkOptions,
  type NetworkRouterOptions,
  startLinkedNetwork,
  startNetwork,
  type TestIdentity,
  type TestNetwork,
} from './network.js'
export { CLI_BIN, REPO_ROOT } from './paths.js'
export { type HeldSocket, holdTcp, scrapeMetric } from './attacker.js'
export { freePort, listeningPorts, openSocketsTowards } from './ports.js'
export { type ClientCredentials, RawClient } from './raw-client.js'
export {
  ensureAllRouterPolicies,
  startTestRouter,
  type TestRouter,
  type TestRouterOptions,
} from './router.js'
export { rawExchange, socksConnectBytes } from './socks.js'
export { startTunnelNetwork, type TunnelNetwork } from './tunnel-network.js'
export { fetchStatus, spawnTunnel, type TunnelProc } from './tunneler.js'
export { type WaitForOptions, waitFor } from './wait-for.js'
export { startWebNetwork, type WebNetwork, type WebService, waitForService } from './web-network.js'
