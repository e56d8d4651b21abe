// The pod sandbox's first process, as Kubernetes' own pause image has it: it holds the pod's
// namespaces open, reaps the zombies of containers that share its PID namespace, and exits at once
// on SIGTERM or SIGINT so a pod stops without waiting for the kill timeout. Built with
// `gcc -static` by test/harness/images.ts, so the image needs no libc.
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signal) {
  (void)signal;
  _exit(0);
}

static void reap(int signal) {
  (void)signal;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction on_stop = {.sa_handler = stop};
  struct sigaction on_child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
  sigaction(SIGINT, &on_stop, NULL);
  sigaction(SIGTERM, &on_stop, NULL);
  sigaction(SIGCHLD, &on_child, NULL);
  for (;;) pause();
}
