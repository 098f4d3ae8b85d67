/**
 * libbpf's section-name conventions (`section_defs[]` in libbpf.c, libbpf 1.x): which program type and attach
 * type a `SEC("…")` name means. A definition ending in `+` matches the bare name or `name/<target>`; one ending in
 * `/` matches any `name/…`; any other matches exactly. The first match wins, as in libbpf.
 */

export interface BpfSectionDef {
  /** The definition as libbpf spells it ("kprobe+", "xdp", "cgroup/connect4"). */
  def: string;
  /** `enum bpf_prog_type` name without the prefix, lower case ("kprobe", "sched_cls", "tracing"). */
  progType: string;
  /** `enum bpf_attach_type` name without the prefix, lower case, or null when libbpf leaves it 0. */
  attachType: string | null;
  sleepable: boolean;
}

export interface BpfSectionMatch extends BpfSectionDef {
  /** The kind as written before any `/` ("kprobe", "kretprobe", "tp", "lsm.s"). */
  kind: string;
  /** What follows `kind/` ("do_sys_open", "syscalls/sys_enter_openat"), or null. */
  target: string | null;
}

type Row = readonly [def: string, progType: string, attachType: string | null, sleepable?: boolean];

const ROWS: readonly Row[] = [
  ['socket', 'socket_filter', null],
  ['sk_reuseport/migrate', 'sk_reuseport', 'sk_reuseport_select_or_migrate'],
  ['sk_reuseport', 'sk_reuseport', 'sk_reuseport_select'],
  ['kprobe+', 'kprobe', null],
  ['uprobe+', 'kprobe', null],
  ['uprobe.s+', 'kprobe', null, true],
  ['kretprobe+', 'kprobe', null],
  ['uretprobe+', 'kprobe', null],
  ['uretprobe.s+', 'kprobe', null, true],
  ['kprobe.multi+', 'kprobe', 'trace_kprobe_multi'],
  ['kretprobe.multi+', 'kprobe', 'trace_kprobe_multi'],
  ['kprobe.session+', 'kprobe', 'trace_kprobe_session'],
  ['uprobe.multi+', 'kprobe', 'trace_uprobe_multi'],
  ['uretprobe.multi+', 'kprobe', 'trace_uprobe_multi'],
  ['uprobe.multi.s+', 'kprobe', 'trace_uprobe_multi', true],
  ['uretprobe.multi.s+', 'kprobe', 'trace_uprobe_multi', true],
  ['ksyscall+', 'kprobe', null],
  ['kretsyscall+', 'kprobe', null],
  ['usdt+', 'kprobe', null],
  ['usdt.s+', 'kprobe', null, true],
  ['tc/ingress', 'sched_cls', 'tcx_ingress'],
  ['tc/egress', 'sched_cls', 'tcx_egress'],
  ['tcx/ingress', 'sched_cls', 'tcx_ingress'],
  ['tcx/egress', 'sched_cls', 'tcx_egress'],
  ['netkit/primary', 'sched_cls', 'netkit_primary'],
  ['netkit/peer', 'sched_cls', 'netkit_peer'],
  ['tc', 'sched_cls', null],
  ['classifier', 'sched_cls', null],
  ['action', 'sched_act', null],
  ['tracepoint+', 'tracepoint', null],
  ['tp+', 'tracepoint', null],
  ['raw_tracepoint+', 'raw_tracepoint', null],
  ['raw_tp+', 'raw_tracepoint', null],
  ['raw_tracepoint.w+', 'raw_tracepoint_writable', null],
  ['raw_tp.w+', 'raw_tracepoint_writable', null],
  ['tp_btf+', 'tracing', 'trace_raw_tp'],
  ['fentry+', 'tracing', 'trace_fentry'],
  ['fmod_ret+', 'tracing', 'modify_return'],
  ['fexit+', 'tracing', 'trace_fexit'],
  ['fentry.s+', 'tracing', 'trace_fentry', true],
  ['fmod_ret.s+', 'tracing', 'modify_return', true],
  ['fexit.s+', 'tracing', 'trace_fexit', true],
  ['freplace+', 'ext', null],
  ['lsm+', 'lsm', 'lsm_mac'],
  ['lsm.s+', 'lsm', 'lsm_mac', true],
  ['lsm_cgroup+', 'lsm', 'lsm_cgroup'],
  ['iter+', 'tracing', 'trace_iter'],
  ['iter.s+', 'tracing', 'trace_iter', true],
  ['syscall', 'syscall', null, true],
  ['xdp.frags/devmap', 'xdp', 'xdp_devmap'],
  ['xdp/devmap', 'xdp', 'xdp_devmap'],
  ['xdp.frags/cpumap', 'xdp', 'xdp_cpumap'],
  ['xdp/cpumap', 'xdp', 'xdp_cpumap'],
  ['xdp.frags', 'xdp', 'xdp'],
  ['xdp', 'xdp', 'xdp'],
  ['perf_event', 'perf_event', null],
  ['lwt_in', 'lwt_in', null],
  ['lwt_out', 'lwt_out', null],
  ['lwt_xmit', 'lwt_xmit', null],
  ['lwt_seg6local', 'lwt_seg6local', null],
  ['sockops', 'sock_ops', 'cgroup_sock_ops'],
  ['sk_skb/stream_parser', 'sk_skb', 'sk_skb_stream_parser'],
  ['sk_skb/stream_verdict', 'sk_skb', 'sk_skb_stream_verdict'],
  ['sk_skb/verdict', 'sk_skb', 'sk_skb_verdict'],
  ['sk_skb', 'sk_skb', null],
  ['sk_msg', 'sk_msg', 'sk_msg_verdict'],
  ['lirc_mode2', 'lirc_mode2', 'lirc_mode2'],
  ['flow_dissector', 'flow_dissector', 'flow_dissector'],
  ['cgroup_skb/ingress', 'cgroup_skb', 'cgroup_inet_ingress'],
  ['cgroup_skb/egress', 'cgroup_skb', 'cgroup_inet_egress'],
  ['cgroup/skb', 'cgroup_skb', null],
  ['cgroup/sock_create', 'cgroup_sock', 'cgroup_inet_sock_create'],
  ['cgroup/sock_release', 'cgroup_sock', 'cgroup_inet_sock_release'],
  ['cgroup/sock', 'cgroup_sock', 'cgroup_inet_sock_create'],
  ['cgroup/post_bind4', 'cgroup_sock', 'cgroup_inet4_post_bind'],
  ['cgroup/post_bind6', 'cgroup_sock', 'cgroup_inet6_post_bind'],
  ['cgroup/bind4', 'cgroup_sock_addr', 'cgroup_inet4_bind'],
  ['cgroup/bind6', 'cgroup_sock_addr', 'cgroup_inet6_bind'],
  ['cgroup/connect4', 'cgroup_sock_addr', 'cgroup_inet4_connect'],
  ['cgroup/connect6', 'cgroup_sock_addr', 'cgroup_inet6_connect'],
  ['cgroup/connect_unix', 'cgroup_sock_addr', 'cgroup_unix_connect'],
  ['cgroup/sendmsg4', 'cgroup_sock_addr', 'cgroup_udp4_sendmsg'],
  ['cgroup/sendmsg6', 'cgroup_sock_addr', 'cgroup_udp6_sendmsg'],
  ['cgroup/sendmsg_unix', 'cgroup_sock_addr', 'cgroup_unix_sendmsg'],
  ['cgroup/recvmsg4', 'cgroup_sock_addr', 'cgroup_udp4_recvmsg'],
  ['cgroup/recvmsg6', 'cgroup_sock_addr', 'cgroup_udp6_recvmsg'],
  ['cgroup/recvmsg_unix', 'cgroup_sock_addr', 'cgroup_unix_recvmsg'],
  ['cgroup/getpeername4', 'cgroup_sock_addr', 'cgroup_inet4_getpeername'],
  ['cgroup/getpeername6', 'cgroup_sock_addr', 'cgroup_inet6_getpeername'],
  ['cgroup/getpeername_unix', 'cgroup_sock_addr', 'cgroup_unix_getpeername'],
  ['cgroup/getsockname4', 'cgroup_sock_addr', 'cgroup_inet4_getsockname'],
  ['cgroup/getsockname6', 'cgroup_sock_addr', 'cgroup_inet6_getsockname'],
  ['cgroup/getsockname_unix', 'cgroup_sock_addr', 'cgroup_unix_getsockname'],
  ['cgroup/sysctl', 'cgroup_sysctl', 'cgroup_sysctl'],
  ['cgroup/getsockopt', 'cgroup_sockopt', 'cgroup_getsockopt'],
  ['cgroup/setsockopt', 'cgroup_sockopt', 'cgroup_setsockopt'],
  ['cgroup/dev', 'cgroup_device', 'cgroup_device'],
  ['struct_ops+', 'struct_ops', null],
  ['struct_ops.s+', 'struct_ops', null, true],
  ['sk_lookup', 'sk_lookup', 'sk_lookup'],
  ['netfilter', 'netfilter', 'netfilter'],
];

export const BPF_SECTION_DEFS: readonly BpfSectionDef[] = Object.freeze(
  ROWS.map(([def, progType, attachType, sleepable]) => Object.freeze({ def, progType, attachType, sleepable: sleepable === true })),
);

function matches(def: string, name: string): boolean {
  if (def.endsWith('+')) {
    const base = def.slice(0, -1);
    return name === base || name.startsWith(`${base}/`);
  }
  if (def.endsWith('/')) return name.startsWith(def);
  return name === def;
}

/** libbpf's interpretation of a program section name, or undefined when libbpf would not recognise it. */
export function matchBpfSection(name: string): BpfSectionMatch | undefined {
  const def = BPF_SECTION_DEFS.find((d) => matches(d.def, name));
  if (def === undefined) return undefined;
  const slash = name.indexOf('/');
  // Only "+" definitions carry a free-form target; fixed names like "cgroup/connect4" are the kind itself.
  const hasTarget = def.def.endsWith('+') && slash >= 0;
  return {
    ...def,
    kind: hasTarget ? name.slice(0, slash) : name,
    target: hasTarget ? name.slice(slash + 1) : null,
  };
}

/** `enum bpf_map_type` (uapi/linux/bpf.h), lower case without the prefix. */
export const BPF_MAP_TYPES: readonly string[] = Object.freeze([
  'unspec', 'hash', 'array', 'prog_array', 'perf_event_array', 'percpu_hash', 'percpu_array', 'stack_trace',
  'cgroup_array', 'lru_hash', 'lru_percpu_hash', 'lpm_trie', 'array_of_maps', 'hash_of_maps', 'devmap', 'sockmap',
  'cpumap', 'xskmap', 'sockhash', 'cgroup_storage', 'reuseport_sockarray', 'percpu_cgroup_storage', 'queue', 'stack',
  'sk_storage', 'devmap_hash', 'struct_ops', 'ringbuf', 'inode_storage', 'task_storage', 'bloom_filter',
  'user_ringbuf', 'cgrp_storage', 'arena',
]);

export function bpfMapTypeName(id: number): string {
  return BPF_MAP_TYPES[id] ?? `unknown:${id}`;
}
