// Runs INSIDE the AppArmor guest (uml.ts, with network): forwards the guest's own 127.0.0.1:<port> to the
// host's loopback (10.0.2.2:<port> through slirp), so a kubeconfig that names https://127.0.0.1:<port>
// (and a certificate for that address) works unchanged in the guest.
// Usage: node guest-loopback-forward.ts <port>...
import { connect, createServer } from "node:net";

const HOST_LOOPBACK = "10.0.2.2";
for (const port of process.argv.slice(2).map(Number))
  createServer((guestSide) => {
    const hostSide = connect(port, HOST_LOOPBACK);
    guestSide.pipe(hostSide).pipe(guestSide);
    const close = () => {
      guestSide.destroy();
      hostSide.destroy();
    };
    guestSide.on("error", close);
    hostSide.on("error", close);
  }).listen(port, "127.0.0.1");
