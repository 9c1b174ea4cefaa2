# The two commands of the README:
#   make cloud   - install into .venv and start the all-in-one cloud on the embedded defaults
#   make test    - install into .venv, start the services the tests need, run every test
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8774
STATE_DIR ?= ./.stratus

.PHONY: cloud test unit functional bench bench-guest install services libvirt clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

cloud: $(VENV)/.installed
	$(VENV)/bin/stratus all-in-one --state-dir $(STATE_DIR) --port $(PORT)

services:
	scripts/test-services

# libvirt/QEMU, the libvirt extra and the test image, for tests/functional/test_libvirt.py.
# A machine where libvirtd cannot run still runs the other tests (that one skips, saying why).
libvirt: $(VENV)/.installed
	-scripts/libvirt-setup --python $(PY)
	-scripts/build-test-image

test: $(VENV)/.installed services libvirt
	$(PY) -m pytest -q -p no:cacheprovider tests

unit: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

functional: $(VENV)/.installed services libvirt
	$(PY) -m pytest -q -p no:cacheprovider tests/functional

bench: $(VENV)/.installed services
	$(PY) bench/boot.py
	$(PY) bench/tenants.py

# Real guests under libvirt/QEMU TCG: POST -> first console line, delete -> gone.
bench-guest: $(VENV)/.installed libvirt
	$(PY) bench/guest.py

clean:
	rm -rf $(VENV) $(STATE_DIR)
