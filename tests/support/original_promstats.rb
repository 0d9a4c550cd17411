# Prints, as JSON, every Prometheus family the original vmpooler registers (lib/vmpooler/metrics/promstats.rb
# and its collector middleware), read from its own source with a recording stand-in for prometheus-client.
# Usage: ruby original_promstats.rb UPSTREAM_SOURCE_DIR PROMETHEUS_PREFIX
require 'json'
require 'tmpdir'

RECORDED = []

stub = Dir.mktmpdir
Dir.mkdir(File.join(stub, 'prometheus'))
File.write(File.join(stub, 'prometheus', 'client.rb'), <<~RUBY)
  module Prometheus
    module Client
      class Metric
        def initialize(name, docstring:, labels: [], preset_labels: {}, buckets: nil)
          RECORDED << { 'name' => name.to_s, 'type' => self.class.name.split('::').last.downcase,
                        'labels' => labels.map(&:to_s).sort, 'buckets' => buckets }
        end
      end
      class Counter < Metric; end
      class Gauge < Metric; end
      class Summary < Metric; end
      class Histogram < Metric; end
      class Registry
        def register(_metric); end
        def counter(name, docstring:, labels: []) = Counter.new(name, docstring: docstring, labels: labels)
        def histogram(name, docstring:, labels: []) = Histogram.new(name, docstring: docstring, labels: labels)
      end
      def self.registry = (@registry ||= Registry.new)
    end
  end
RUBY
$LOAD_PATH.unshift(stub, File.join(ARGV[0], 'lib'))

module Vmpooler
  class Metrics; end
end
require 'vmpooler/metrics/promstats'
require 'vmpooler/metrics/promstats/collector_middleware'

prefix = ARGV[1]
Vmpooler::Metrics::Promstats.new(nil, 'prometheus_prefix' => prefix).setup_prometheus_metrics(%i[api manager])
Vmpooler::Metrics::Promstats::CollectorMiddleware.new(nil, metrics_prefix: "#{prefix}_http")
puts JSON.generate(RECORDED)
