#!/bin/sh
# RFC 2217 clients of a serialgw line: the gateway's telnet listeners speak
# RFC 2217 (com port control), so the client sets the baud rate, framing,
# DTR/RTS and sends breaks on the real port.  Not a script to run as it is:
# one session per paragraph.
#
# The gateway, on the machine with the board (a line from farm.toml, or):
twistd -n --pidfile= serialgw --device /dev/ttyUSB0 --port telnet+tcp:2217:interface=0.0.0.0

# pyserial's terminal, at 115200 (pyserial >= 3.4):
python3 -m serial.tools.miniterm rfc2217://gateway:2217 115200

# pyserial from Python: settings, DTR/RTS and a break all reach the UART.
python3 - <<'PY'
import serial
port = serial.serial_for_url("rfc2217://gateway:2217", baudrate=57600, timeout=1)
port.dtr = False          # e.g. hold an ESP32 in reset
port.rts = True
port.send_break(0.25)
port.write(b"help\r\n")
print(port.read(200))
port.close()
PY

# esptool (v4): flash an ESP32 through the gateway; esptool drives DTR/RTS
# for its reset sequence over RFC 2217 (pyserial's ign_set_control option
# makes it quicker: it does not wait for SET-CONTROL answers).
esptool.py --port 'rfc2217://gateway:2217?ign_set_control' --baud 115200 flash_id
esptool.py --port 'rfc2217://gateway:2217?ign_set_control' write_flash 0x0 firmware.bin

# labgrid: the target's serial port is the gateway's RFC 2217 listener
# (labgrid-env.yaml); tests drive it through SerialDriver.
pytest --lg-env labgrid-env.yaml tests/
python3 - <<'PY'
from labgrid import Environment
target = Environment("labgrid-env.yaml").get_target("main")
console = target.get_driver("SerialDriver")
console.write(b"\r")
print(console.read(size=200, timeout=2))
PY
