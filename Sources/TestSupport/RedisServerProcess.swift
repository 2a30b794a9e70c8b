/// Placeholder until the redis-server fixture lands.
package enum TestSupportInfo {}
