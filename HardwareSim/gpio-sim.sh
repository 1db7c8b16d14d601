#!/usr/bin/env bash
# A simulated GPIO pen on a real kernel GPIO chip, for bring-up: sets up a `gpio-sim` chip
# through configfs (Linux 5.17 or later with CONFIG_GPIO_SIM, as root), with the six lines of a
# Stipple GPIO pen named, so `stippled --pen gpio` runs its real libgpiod path against it. The
# "pen" side (pedal, e-stop, tachometer, over-depth switch) is played by writing the lines' pull
# in sysfs; the motor line the daemon drives is read back from sysfs.
#
#   sudo HardwareSim/gpio-sim.sh up               # create the chip, print a stippled config
#   sudo HardwareSim/gpio-sim.sh set pedal 1      # press the pedal (0 releases it)
#   sudo HardwareSim/gpio-sim.sh tach 120 5       # tachometer pulses at 120 Hz for 5 s
#   sudo HardwareSim/gpio-sim.sh status           # every line's value (motor_enable: the daemon's)
#   sudo HardwareSim/gpio-sim.sh down             # remove the chip
#
# The simulated tachometer follows no motor: it pulses when told to, so a stall (no pulses while
# motor_enable is active) and a runaway (`tach 175 1`) are what it shows best. Shell timing is
# good to a millisecond or two, not to the kernel's edge timestamps' precision.
# HardwareSim/README.md ("A real GPIO chip: gpio-sim") walks through a session.
set -euo pipefail

CONFIGFS=/sys/kernel/config/gpio-sim
DEVICE=${STIPPLE_GPIO_SIM_DEVICE:-stipple-pen}
LABEL=stipple-pen
LINES=(motor_enable status_led pedal estop tachometer over_depth)

die() { echo "gpio-sim.sh: $*" >&2; exit 1; }

offset_of() {
    local i
    for i in "${!LINES[@]}"; do
        if [[ ${LINES[$i]} == "$1" ]]; then echo "$i"; return; fi
    done
    die "no line '$1' (lines: ${LINES[*]})"
}

# The sysfs directory of a line of the live chip: /sys/devices/platform/gpio-sim.N/gpiochipM/sim_gpioX.
line_dir() {
    local dev chip
    dev=$(cat "$CONFIGFS/$DEVICE/dev_name")
    chip=$(cat "$CONFIGFS/$DEVICE/gpio-bank0/chip_name")
    echo "/sys/devices/platform/$dev/$chip/sim_gpio$(offset_of "$1")"
}

require_root() { [[ $(id -u) == 0 ]] || die "run as root (configfs and the sim's sysfs attributes are root's)"; }

up() {
    require_root
    if [[ ! -d $CONFIGFS ]]; then
        modprobe gpio-sim 2>/dev/null || die "the gpio-sim module is not available (CONFIG_GPIO_SIM, Linux 5.17+)"
        mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config
    fi
    [[ -d $CONFIGFS ]] || die "$CONFIGFS does not exist after loading gpio-sim"
    [[ ! -e $CONFIGFS/$DEVICE ]] || die "$DEVICE exists already ('$0 down' removes it)"
    mkdir "$CONFIGFS/$DEVICE"
    mkdir "$CONFIGFS/$DEVICE/gpio-bank0"
    echo 8 > "$CONFIGFS/$DEVICE/gpio-bank0/num_lines"
    echo "$LABEL" > "$CONFIGFS/$DEVICE/gpio-bank0/label"
    local i
    for i in "${!LINES[@]}"; do
        mkdir "$CONFIGFS/$DEVICE/gpio-bank0/line$i"
        echo "${LINES[$i]}" > "$CONFIGFS/$DEVICE/gpio-bank0/line$i/name"
    done
    echo 1 > "$CONFIGFS/$DEVICE/live"
    # Inputs idle: pedal released, e-stop released, switch open, tachometer low.
    for line in pedal estop tachometer over_depth; do echo pull-down > "$(line_dir "$line")/pull"; done
    local chip
    chip=$(cat "$CONFIGFS/$DEVICE/gpio-bank0/chip_name")
    echo "gpio-sim chip $chip (label $LABEL) is live; lines: ${LINES[*]}" >&2
    echo "a configuration for stippled (save it, run: stippled --config FILE):" >&2
    cat <<EOF
{
  "pen": "gpio",
  "gpio": {
    "chip": "$LABEL",
    "serial": "GPIO-SIM-0001",
    "lines": {
      "motor_enable": {"name": "motor_enable"},
      "status_led": {"name": "status_led"},
      "pedal": {"name": "pedal"},
      "estop": {"name": "estop"},
      "tachometer": {"name": "tachometer"},
      "over_depth": {"name": "over_depth"}
    }
  }
}
EOF
}

down() {
    require_root
    [[ -e $CONFIGFS/$DEVICE ]] || return 0
    echo 0 > "$CONFIGFS/$DEVICE/live"
    local i
    for i in "${!LINES[@]}"; do rmdir "$CONFIGFS/$DEVICE/gpio-bank0/line$i" 2>/dev/null || true; done
    rmdir "$CONFIGFS/$DEVICE/gpio-bank0" "$CONFIGFS/$DEVICE"
    echo "gpio-sim chip removed" >&2
}

# set LINE 0|1: the world acts on an input (the line reads 1 with a pull-up).
set_input() {
    require_root
    local line=$1 value=$2
    case $line in pedal | estop | over_depth | tachometer) ;; *) die "$line is not an input of the pen" ;; esac
    case $value in 1 | on | down) echo pull-up > "$(line_dir "$line")/pull" ;; 0 | off | up) echo pull-down > "$(line_dir "$line")/pull" ;;
        *) die "value must be 0 or 1" ;; esac
}

tach() {
    require_root
    local hz=${1:?tach HZ SECONDS} seconds=${2:?tach HZ SECONDS}
    local pull count half
    pull="$(line_dir tachometer)/pull"
    count=$(awk -v hz="$hz" -v s="$seconds" 'BEGIN { printf "%d", hz * s }')
    half=$(awk -v hz="$hz" 'BEGIN { printf "%.6f", 0.5 / hz }')
    for ((i = 0; i < count; i++)); do
        echo pull-up > "$pull"
        sleep "$half"
        echo pull-down > "$pull"
        sleep "$half"
    done
}

status() {
    [[ -e $CONFIGFS/$DEVICE ]] || die "no chip ('$0 up' creates it)"
    local line
    for line in "${LINES[@]}"; do printf '%-13s %s\n' "$line" "$(cat "$(line_dir "$line")/value")"; done
}

case ${1:-} in
    up) up ;;
    down) down ;;
    set) set_input "${2:?set LINE 0|1}" "${3:?set LINE 0|1}" ;;
    tach) tach "${2:-}" "${3:-}" ;;
    status) status ;;
    *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
