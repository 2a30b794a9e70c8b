@main
enum SessionAPICommand {
    static func main() {}
}
