"""Every Stratus option, declared once. ``stratus config sample`` prints them."""
from __future__ import annotations

import socket

from stratus.conf.cfg import Opt

DEFAULT = [
    Opt("host", "str", socket.gethostname(),
        "Name of this host as services and compute nodes know it."),
    Opt("transport_url", "str", "memory://",
        "Message queue URL: rabbit://USER:PASS@HOST:PORT/VHOST for RabbitMQ, "
        "or memory:// for the in-process transport of the all-in-one."),
    Opt("state_path", "str", "./.stratus",
        "Directory for the state of this deployment: SQLite file, image store, keys."),
    Opt("debug", "bool", False, "Log at DEBUG level."),
    Opt("log_file", "str", None, "Write logs to this file instead of stderr."),
    Opt("report_interval", "float", 10.0,
        "Seconds between service heartbeats.", min=0.1),
    Opt("allow_resize_to_same_host", "bool", False,
        "Let a resize pick the instance's own host (a cold migrate never does)."),
    Opt("resize_confirm_window", "float", 0.0,
        "Seconds after which a resize or cold migration waiting in VERIFY_RESIZE is "
        "confirmed automatically by its destination host; 0 disables (Nova's "
        "resize_confirm_window).", min=0),
    Opt("service_down_time", "float", 60.0,
        "A service whose last heartbeat is older than this many seconds is shown down.",
        min=1),
    Opt("rpc_response_timeout", "float", 60.0,
        "Seconds to wait for the reply to an RPC call.", min=0.1),
    Opt("executor_thread_pool_size", "int", 64,
        "Worker threads that handle RPC requests in each RPC service.", min=1),
    Opt("instance_build_timeout", "float", 600.0,
        "Seconds an instance may stay in BUILD before it is put in ERROR; 0 disables.",
        min=0),
    Opt("force_config_drive", "bool", False,
        "Give every instance a config drive, whether or not it asked for one (Nova's "
        "force_config_drive)."),
]

DATABASE = [
    Opt("connection", "str", None,
        "SQLAlchemy URL of the database, e.g. postgresql+psycopg://user@host/db, "
        "mysql+pymysql://root@127.0.0.1/test, sqlite:///path. Default: SQLite under state_path.",
        secret=True),
    Opt("pool_size", "int", 10, "Connections kept in the pool.", min=1),
    Opt("max_overflow", "int", 20, "Connections allowed above pool_size.", min=0),
]

API = [
    Opt("listen", "str", "127.0.0.1", "Address the API listens on."),
    Opt("port", "int", 8774, "Port the API listens on.", min=0, max=65535),
    Opt("threads", "int", 16, "Threads serving API requests.", min=1),
    Opt("public_url", "str", None,
        "Base URL clients reach the API at (used in the catalog and links); "
        "default http://LISTEN:PORT."),
    Opt("max_limit", "int", 1000, "Most items returned in one page of a list.", min=1),
    Opt("region", "str", "RegionOne", "Region name in the service catalog."),
    Opt("max_request_body_size", "int", 114688,
        "Largest request body, in bytes, the compute, identity and image APIs accept "
        "(oslo.middleware's sizelimit); past it the answer is 413 and nothing is read. "
        "Image data uploads are bounded by [image] max_image_size instead.", min=1),
]

IDENTITY = [
    Opt("token_expiration", "int", 3600, "Seconds a token stays valid.", min=60),
    Opt("key_file", "str", None,
        "Fernet key file shared by every API process (default: STATE_PATH/fernet.key, "
        "created on first start)."),
]

IMAGE = [
    Opt("store_dir", "str", None,
        "Directory image data is stored in (default: STATE_PATH/images)."),
    Opt("max_image_size", "int", 1099511627776,
        "Largest image upload accepted, in bytes (Glance's image_size_cap); a larger "
        "upload is refused with 413 and leaves nothing behind.", min=0),
    Opt("disk_formats", "list",
        ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"],
        "Disk formats an image may have (Glance's [image_format] disk_formats)."),
    Opt("container_formats", "list",
        ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"],
        "Container formats an image may have (Glance's [image_format] container_formats)."),
]

COMPUTE = [
    Opt("driver", "str", "fake",
        "Virt driver: fake, libvirt, or module.path:ClassName. The all-in-one chooses "
        "with --hypervisor unless this is set in its config file."),
    Opt("resource_update_interval", "float", 60.0,
        "Seconds between reports of this host's resources to the conductor.", min=0.1),
    # Allocation ratios and reservations as Nova's: a ratio left unset keeps
    # the node's current value, which starts as the initial_* ratio.
    Opt("cpu_allocation_ratio", "float", None,
        "Virtual CPUs per physical CPU. Unset: the node keeps its ratio (initial_cpu_"
        "allocation_ratio when the node is created).", min=0.0001),
    Opt("ram_allocation_ratio", "float", None,
        "Virtual RAM per physical RAM. Unset: the node keeps its ratio (initial_ram_"
        "allocation_ratio when the node is created).", min=0.0001),
    Opt("disk_allocation_ratio", "float", None,
        "Virtual disk per physical disk. Unset: the node keeps its ratio (initial_disk_"
        "allocation_ratio when the node is created).", min=0.0001),
    Opt("initial_cpu_allocation_ratio", "float", 4.0,
        "CPU allocation ratio of a new compute node when cpu_allocation_ratio is unset.",
        min=0.0001),
    Opt("initial_ram_allocation_ratio", "float", 1.0,
        "RAM allocation ratio of a new compute node when ram_allocation_ratio is unset.",
        min=0.0001),
    Opt("initial_disk_allocation_ratio", "float", 1.0,
        "Disk allocation ratio of a new compute node when disk_allocation_ratio is unset.",
        min=0.0001),
    Opt("reserved_host_memory_mb", "int", 512,
        "Memory (MB) kept back for the host: capacity is (total - reserved) * ratio.", min=0),
    Opt("reserved_host_cpus", "int", 0, "Physical CPUs kept back for the host.", min=0),
    Opt("reserved_host_disk_mb", "int", 0, "Disk (MB) kept back for the host.", min=0),
    Opt("max_concurrent_builds", "int", 64, "Builds run at once on this host.", min=1),
    Opt("shutdown_timeout", "int", 60,
        "Seconds a guest OS gets to shut down cleanly (ACPI) when it is shelved, before "
        "it is powered off.", min=0),
    Opt("resume_guests_state_on_host_boot", "bool", False,
        "At start, boot the guests of ACTIVE instances that are shut off (the host "
        "rebooted); otherwise they become SHUTOFF, as the power state sync finds them."),
    Opt("sync_power_state_interval", "float", 600.0,
        "Seconds between checks of every guest's power state against the database "
        "(a guest that shut itself down becomes SHUTOFF); 0 disables them.", min=0),
    Opt("image_cache_manager_interval", "float", 2400.0,
        "Seconds between runs of the image cache cleanup of drivers that cache images "
        "(libvirt: see [libvirt] image_cache_max_age); 0 disables it.", min=0),
]

FAKE = [
    Opt("vcpus", "int", 64, "Fake driver: physical CPUs of the simulated host.", min=1),
    Opt("memory_mb", "int", 131072, "Fake driver: memory of the simulated host.", min=1),
    Opt("local_gb", "int", 2048, "Fake driver: disk of the simulated host.", min=1),
    Opt("delay", "float", 0.0, "Fake driver: seconds each operation takes.", min=0),
    Opt("hosts", "int", 0,
        "Run this many fake compute hosts in one stratus-compute process, named "
        "HOST-00001, HOST-00002... (HOST is [DEFAULT] host), each its own service and "
        "compute node; 0 runs the one host HOST. Also `stratus compute --fake-hosts N`.",
        min=0),
]

LIBVIRT = [
    Opt("virt_type", "str", "kvm",
        "Libvirt domain type: kvm (hardware virtualisation, needs /dev/kvm) or qemu "
        "(TCG emulation: slower, works in nested VMs).", choices=("kvm", "qemu")),
    Opt("connection_uri", "str", "qemu:///system", "Libvirt connection URI."),
    Opt("instances_path", "str", None,
        "Directory of the guests' disks, config drives and console logs, one "
        "sub-directory per instance (default: STATE_PATH/instances)."),
    Opt("images_path", "str", None,
        "Directory of this host's image cache: base images, kernels and ramdisks "
        "fetched from the image service, named by checksum (default: "
        "INSTANCES_PATH/_base)."),
    Opt("wait_soft_reboot_seconds", "float", 120.0,
        "Seconds a soft reboot waits for the guest OS to shut down (ACPI) before it "
        "falls back to a hard reboot.", min=0),
    Opt("image_cache_max_age", "float", 86400.0,
        "Seconds an unused base image stays in the image cache before the periodic "
        "task removes it.", min=0),
    Opt("image_download_timeout", "float", 600.0,
        "Seconds an image download from the image service may take.", min=1),
]

SERVICE_USER = [
    Opt("auth_url", "str", None,
        "Identity v3 URL the compute service authenticates at to fetch images "
        "(default: PUBLIC_URL/identity, the API of this deployment)."),
    Opt("username", "str", "admin", "User the compute service fetches images as."),
    Opt("password", "str", None,
        "Its password (the all-in-one fills in its admin password).", secret=True),
    Opt("project_name", "str", "admin", "Project of its token."),
    Opt("user_domain_name", "str", "Default", "Domain of the user."),
    Opt("project_domain_name", "str", "Default", "Domain of the project."),
    Opt("image_endpoint", "str", None,
        "Image API URL, e.g. http://controller:8774/image (default: from the token's "
        "service catalog)."),
]

SCHEDULER = [
    Opt("max_attempts", "int", 3, "Hosts tried for one build before giving up.", min=1),
    Opt("host_state_max_age", "float", 1.0,
        "Seconds between the scheduler's incremental refreshes of its cached host states "
        "(what changed in the database since the last look; its own claims apply at "
        "once); 0 refreshes before every request.", min=0),
    Opt("candidate_limit", "int", 0,
        "Feasible hosts ranked per decision (hosts are visited in random order); "
        "0 means max(2, ceil(log2(number of hosts))), as Nomad.", min=0),
]

FILTER_SCHEDULER = [
    Opt("enabled_filters", "list",
        ["ComputeFilter", "AvailabilityZoneFilter", "RamFilter", "CoreFilter", "DiskFilter",
         "ComputeCapabilitiesFilter", "ImagePropertiesFilter",
         "ServerGroupAntiAffinityFilter", "ServerGroupAffinityFilter", "SameHostFilter",
         "DifferentHostFilter"],
        "Filters every host must pass, by Nova's names. Also available: "
        "AggregateInstanceExtraSpecsFilter, AggregateMultiTenancyIsolation."),
    Opt("host_subset_size", "int", 1,
        "Pick at random among this many best-weighed candidates.", min=1),
    Opt("ram_weight_multiplier", "float", 1.0,
        "Weight of free RAM: positive spreads instances, negative stacks them."),
    Opt("cpu_weight_multiplier", "float", 1.0,
        "Weight of free vCPUs: positive spreads, negative stacks."),
    Opt("disk_weight_multiplier", "float", 1.0,
        "Weight of free disk: positive spreads, negative stacks."),
    Opt("io_ops_weight_multiplier", "float", -1.0,
        "Weight of builds under way on a host: negative prefers idle hosts."),
    Opt("num_instances_weight_multiplier", "float", 0.0,
        "Weight of the number of instances on a host: positive stacks, negative spreads."),
    Opt("soft_affinity_weight_multiplier", "float", 1.0,
        "Weight of a soft-affinity group's members on a host.", min=0),
    Opt("soft_anti_affinity_weight_multiplier", "float", 1.0,
        "Weight of a soft-anti-affinity group's absence from a host.", min=0),
]

def _quota(name: str, default: int, what: str) -> Opt:
    return Opt(name, "int", default, f"{what} -1 means unlimited.", min=-1)


# Nova's [quota] options (nova/conf/quota.py), same names and defaults: the
# limits a project has until an administrator sets its own with
# os-quota-sets. Plus Glance's unified-limits resource names for images.
QUOTA = [
    _quota("instances", 10, "Servers a project may have."),
    _quota("cores", 20, "Instance cores (vCPUs) a project may use."),
    _quota("ram", 51200, "Megabytes of instance RAM a project may use."),
    _quota("metadata_items", 128, "Metadata items a server may have."),
    _quota("injected_files", 5, "Files a server create may inject (personality)."),
    _quota("injected_file_content_bytes", 10240, "Bytes each injected file may hold."),
    _quota("injected_file_path_length", 255,
           "Characters an injected file path may have (the API calls this quota "
           "injected_file_path_bytes)."),
    _quota("key_pairs", 100, "Key pairs each user may have."),
    _quota("server_groups", 10, "Server groups a project may have."),
    _quota("server_group_members", 10, "Servers each server group may hold."),
    _quota("image_count_total", -1,
           "Images a project may own (Glance's unified-limits resource "
           "image_count_total); a create past it is refused with 413."),
    _quota("image_size_total", -1,
           "MiB of image data a project may store (Glance's image_size_total); an "
           "upload that would pass it is refused with 413 and leaves nothing behind."),
]

NOTIFICATIONS = [
    Opt("driver", "str", "messaging", "Where notifications go.", choices=("messaging", "noop")),
]

OSLO_POLICY = [
    Opt("policy_file", "str", None,
        "YAML or JSON file whose rules override or extend the default policy "
        "(rule name: check string, as oslo.policy's). `stratus policy list` prints the "
        "effective rules."),
]

REGISTRY: dict[str, list[Opt]] = {
    "DEFAULT": DEFAULT,
    "database": DATABASE,
    "api": API,
    "identity": IDENTITY,
    "image": IMAGE,
    "compute": COMPUTE,
    "fake": FAKE,
    "libvirt": LIBVIRT,
    "service_user": SERVICE_USER,
    "scheduler": SCHEDULER,
    "filter_scheduler": FILTER_SCHEDULER,
    "quota": QUOTA,
    "notifications": NOTIFICATIONS,
    "oslo_policy": OSLO_POLICY,
}
