# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
export PATH := $(CURDIR)/.cache/testbed/bin:$(PATH)

.PHONY: setup testbed cluster cluster-down crds test test-unit demo demo-failing bench

setup:  ## install the project and its test dependencies
	$(PYTHON) -m pip install -q -e '.[test]'

testbed:  ## build the pinned control-plane binaries (once; rebuilt when a pin changes)
	bash hack/testbed/build.sh

cluster: testbed  ## start the local test bed, write .cluster/kubeconfig
	bash hack/testbed/cluster.sh up

cluster-down:  ## stop the local test bed
	bash hack/testbed/cluster.sh down

crds:  ## regenerate crds/ from the pydantic models, and from it the chart's CRD template
	PYTHONPATH=operator $(PYTHON) -m testenv.crd > crds/testenvironment.yaml
	bash hack/sync-chart-crds.sh

demo: setup testbed  ## the shop example on real pods: test bed, operator, provisioned, seeded, tested
	bash hack/demo.sh

demo-failing: setup testbed  ## the same with one real failing test: what a failure looks like (exits 1)
	bash hack/demo.sh --failing

test: setup testbed  ## every test: unit, contract, component, real servers
	bash hack/servers.sh
	$(PYTHON) -m pytest

test-unit:
	$(PYTHON) -m pytest tests/unit

bench: setup testbed  ## benchmarks, not tests (about 102 min; figures in bench/RESULTS.md)
	$(PYTHON) bench/api_writes.py --repeats 5
	$(PYTHON) bench/overhead.py --repeats 7 --warmup 1
	$(PYTHON) bench/full_run.py --repeats 5
	$(PYTHON) bench/idle.py --envs 200 --window 320
	$(PYTHON) bench/scale.py --sizes 200,500,1000 --repeats 1 --raw --no-qps-limits --testbed-state /tmp/bench-noqps --testbed-name benchnoqps
	$(PYTHON) bench/scale.py --sizes 50,100,200 --repeats 1 --raw
	$(PYTHON) bench/burst.py --no-qps-limits --testbed-state /tmp/bench-noqps --testbed-name benchnoqps
	$(PYTHON) bench/memory_burst.py --repeats 2 --allocator image --allocator pymalloc
	$(PYTHON) bench/fuzz_manifests.py --seed 20261130 --count 1000 --apply 200
	$(PYTHON) bench/chaos.py --seed 20261129 --kills 100 --acting-kills 5 --restarts 5 --envs 30
