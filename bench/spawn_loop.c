/* The rival for spawning: a plain C posix_spawn + waitpid loop. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000;
  char *args[] = {"/bin/true", NULL};
  for (int i = 0; i < n; i++) {
    pid_t pid;
    int st;
    if (posix_spawn(&pid, args[0], NULL, NULL, args, environ) != 0) return 1;
    if (waitpid(pid, &st, 0) != pid || st != 0) return 1;
  }
  return 0;
}
