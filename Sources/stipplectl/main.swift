// The stipplectl executable: every command lives in StippleCtlCommands, so tests can parse and
// run them in-process.
import StippleCtlCommands

StippleCtl.main()
