#include "cli/cli.h"

#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int rc = mg_cli_main(argc, argv);
    /*
     * Everything modelgate made is released by now (mg_cli_serve's teardown ends with the ONNX
     * Runtime environment). ONNX Runtime keeps one thread of its own, a timed wait it starts
     * with the environment, that ReleaseEnv does not join: returning would run the exit-time
     * destructors of its statics while that thread may still read them (ASan saw it read a
     * freed string during exit). So the process ends here, its streams flushed, without them.
     */
    fflush(NULL);
    _exit(rc);
}
