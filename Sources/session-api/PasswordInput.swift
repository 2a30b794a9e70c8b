import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A password that does not come from the command line: a line of stdin, or typed at a terminal without echo.
enum PasswordInput {
    /// The password from stdin. From a pipe or a file: its first line, without the line break. From a terminal:
    /// typed after a prompt on stderr with echo off, twice (the entries must match; an empty first entry is
    /// returned as is, to be refused as "password missing"). Blocking: call it before the command starts any work.
    /// - Throws: `CommandFailure` when the terminal cannot be set up, typing is cancelled (Ctrl-C) or the entries differ.
    static func read() throws -> String {
        guard isatty(STDIN_FILENO) == 1 else {
            return readLine(strippingNewline: true) ?? ""
        }
        let password = try self.prompt("Password: ")
        guard !password.isEmpty else { return password }
        guard try self.prompt("Password (again): ") == password else {
            throw CommandFailure("the two passwords differ")
        }
        return password
    }

    /// Reads one line from the terminal on stdin with echo and signal keys off: Enter ends it, the erase and
    /// kill keys edit it, Ctrl-C (or Ctrl-\) cancels, other control keys are ignored. Read key by key rather
    /// than letting Ctrl-C kill the process, which would leave the terminal without echo.
    private static func prompt(_ text: String) throws -> String {
        var saved = termios()
        guard tcgetattr(STDIN_FILENO, &saved) == 0 else {
            throw CommandFailure("cannot read the terminal's settings: \(String(cString: strerror(errno)))")
        }
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG)
        withUnsafeMutableBytes(of: &quiet.c_cc) { keys in
            keys[Int(VMIN)] = 1
            keys[Int(VTIME)] = 0
        }
        let (interrupt, quit, erase, kill, end) = withUnsafeBytes(of: saved.c_cc) { keys in
            (keys[Int(VINTR)], keys[Int(VQUIT)], keys[Int(VERASE)], keys[Int(VKILL)], keys[Int(VEOF)])
        }
        // Echo off before the prompt appears, so nothing typed after it is echoed; TCSAFLUSH drops what was
        // typed before (it was echoed).
        guard tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0 else {
            throw CommandFailure("cannot turn off the terminal's echo: \(String(cString: strerror(errno)))")
        }
        defer {
            tcsetattr(STDIN_FILENO, TCSANOW, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        FileHandle.standardError.write(Data(text.utf8))
        var bytes: [UInt8] = []
        while true {
            var byte: UInt8 = 0
            let count = Glibc.read(STDIN_FILENO, &byte, 1)
            if count < 0, errno == EINTR { continue }
            guard count == 1 else { break }
            switch byte {
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                return String(decoding: bytes, as: UTF8.self)
            case interrupt, quit:
                throw CommandFailure("cancelled")
            case end where bytes.isEmpty:
                return ""
            case erase, 0x7F, 0x08:
                // Drop the last character: its continuation bytes, then its first byte.
                while let last = bytes.popLast(), last & 0xC0 == 0x80 {}
            case kill:
                bytes.removeAll()
            case 0..<0x20:
                continue
            default:
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
