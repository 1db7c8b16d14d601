// libgpiod v1 (Debian 12: libgpiod-dev 1.6), for StippleGPIO.
#include <gpiod.h>
