// SPDX-License-Identifier: MIT
/*
 * asio_echo: the echo server a C++ programmer writes with Boost.Asio and
 * C++20 coroutines: co_spawn per connection, async_read_some, async_write,
 * one thread, io_context with concurrency hint 1.
 *
 * build-peers.sh builds it twice: asio_uring_echo with BOOST_ASIO_HAS_IO_URING
 * and BOOST_ASIO_DISABLE_EPOLL (Asio's io_uring proactor), and asio_epoll_echo
 * on its default epoll reactor. The io_uring build checks at startup that
 * the process really holds an io_uring (an anon_inode:[io_uring] fd) and
 * refuses to serve otherwise.
 *
 * Usage: asio_*_echo --port P [--host H] [--mode echo|sink|http]
 * Prints "Serving on HOST:PORT" when ready; SIGTERM ends it (default action).
 */
#include <boost/asio.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <dirent.h>
#include <string>
#include <unistd.h>
#include <vector>

namespace asio = boost::asio;
using asio::ip::tcp;

static const char usage[] = "Usage: asio_echo --port P [--host H] [--mode echo|sink|http]";
static const size_t read_size = 64 * 1024;	// the read size of every other peer
static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\n"
			    "Hello, world!";

enum class mode_t_ { echo, sink, http };
static mode_t_ mode = mode_t_::echo;

[[noreturn]] static void usage_error(const std::string &msg)
{
	std::fprintf(stderr, "asio_echo: %s\n%s\n", msg.c_str(), usage);
	std::exit(2);
}

static size_t http_count(int &crlf, const char *p, size_t n)
{
	static const char term[] = "\r\n\r\n";
	size_t count = 0;

	for (size_t i = 0; i < n; i++) {
		crlf = p[i] == term[crlf] ? crlf + 1 : p[i] == '\r';
		if (crlf == 4) {
			count++;
			crlf = 0;
		}
	}
	return count;
}

static asio::awaitable<void> serve(tcp::socket s)
{
	// Not zeroed: its pages are touched only as far as data lands in them
	// (a std::vector would write all 64 KiB per connection).
	std::unique_ptr<char[]> buf(new char[read_size]);
	std::string replies;
	int crlf = 0;

	try {
		for (;;) {
			size_t n = co_await s.async_read_some(asio::buffer(buf.get(), read_size), asio::use_awaitable);

			if (mode == mode_t_::echo) {
				co_await asio::async_write(s, asio::buffer(buf.get(), n), asio::use_awaitable);
			} else if (mode == mode_t_::http) {
				size_t k = http_count(crlf, buf.get(), n);

				if (!k)
					continue;
				replies.clear();
				for (size_t i = 0; i < k; i++)
					replies.append(reply, sizeof(reply) - 1);
				co_await asio::async_write(s, asio::buffer(replies), asio::use_awaitable);
			}
		}
	} catch (const std::exception &) {
		// EOF or a reset: the socket closes as s goes
	}
}

static asio::awaitable<void> listen(tcp::acceptor &a)
{
	for (;;) {
		boost::system::error_code ec;
		tcp::socket s = co_await a.async_accept(asio::redirect_error(asio::use_awaitable, ec));

		if (ec)
			continue;	// EMFILE and the like: the next accept may work
		s.set_option(tcp::no_delay(true));
		asio::co_spawn(a.get_executor(), serve(std::move(s)), asio::detached);
	}
}

// True when one of this process's fds is an io_uring instance.
static bool holds_io_uring()
{
	DIR *d = opendir("/proc/self/fd");
	bool found = false;

	if (!d)
		return false;
	while (struct dirent *e = readdir(d)) {
		char path[300], target[64];
		ssize_t n;

		std::snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = 0;
			found |= std::strcmp(target, "anon_inode:[io_uring]") == 0;
		}
	}
	closedir(d);
	return found;
}

int main(int argc, char **argv)
{
	std::string host = "127.0.0.1";
	int port = -1;

	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		auto value = [&]() -> std::string {
			if (i + 1 >= argc)
				usage_error(a + " needs a value");
			return argv[++i];
		};
		if (a == "-h" || a == "--help") {
			std::printf("%s\n  --port P  listen on port P (0: any free port)\n"
				    "  --host H  listen on address H (default 127.0.0.1)\n"
				    "  --mode M  echo (default), sink or http\n", usage);
			return 0;
		} else if (a == "--port") {
			char *end;
			std::string v = value();
			long p = std::strtol(v.c_str(), &end, 10);
			if (*end || p < 0 || p > 65535)
				usage_error("bad --port");
			port = (int)p;
		} else if (a == "--host") {
			host = value();
		} else if (a == "--mode") {
			std::string m = value();
			if (m == "echo")
				mode = mode_t_::echo;
			else if (m == "sink")
				mode = mode_t_::sink;
			else if (m == "http")
				mode = mode_t_::http;
			else
				usage_error("--mode is echo, sink or http, not '" + m + "'");
		} else {
			usage_error("unrecognized option '" + a + "'");
		}
	}
	if (port < 0)
		usage_error("--port is required");
	std::signal(SIGPIPE, SIG_IGN);

	asio::io_context ctx(1);
	tcp::acceptor acc(ctx);
	tcp::endpoint ep(asio::ip::make_address(host), (unsigned short)port);

	acc.open(ep.protocol());
	acc.set_option(tcp::acceptor::reuse_address(true));
	acc.bind(ep);
	acc.listen(1024);
#ifdef BOOST_ASIO_HAS_IO_URING
	if (!holds_io_uring()) {
		std::fprintf(stderr, "asio_echo: built for io_uring, but the process holds no io_uring\n");
		return 1;
	}
#endif
	asio::co_spawn(ctx, listen(acc), asio::detached);
	std::printf("Serving on %s:%d (%s)\n", host.c_str(), acc.local_endpoint().port(),
		    holds_io_uring() ? "io_uring" : "epoll");
	std::fflush(stdout);
	ctx.run();
	return 0;
}
