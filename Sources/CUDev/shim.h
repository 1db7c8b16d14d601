// libudev (Debian 12: libudev-dev), for StippleDiscovery.
#include <libudev.h>
