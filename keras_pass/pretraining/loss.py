"""The PASS part-aware self-distillation loss, as pure functions.

With teacher probabilities `q_g = softmax((t_g - c) / tau_t)` of the two
global views g and student log-probabilities `log p_v = log_softmax(s_v /
tau_s)`, every term is `CE(q, p) = -sum_k q_k log p_k` averaged over the
batch, and

    loss = ( sum_{g} sum_{v != g}          CE(q_g^cls,  p_v^cls)      # all views
           + sum_i sum_{g} sum_{v in G+R_i, v != g} CE(q_g^pt_i, p_v^pt_i) )
           / number of terms

where G are the 2 global views and R_i the local crops of region i: the CLS
of every view is pulled to the teacher's global CLS, PART_i only to the
teacher's global PART_i (never PART_j). One flat average: 44 terms for
L = 3 parts and J = 3 crops per part, as in the official release.

The DINO baseline (`dino_loss_terms`) is the CLS part alone, over every
view: `sum_g sum_{v != g} CE(q_g, p_v) / (2 * (2 + V_local) - 2)`.
"""

from keras import ops


def _log_softmax(logits, temperature):
    return ops.log_softmax(ops.cast(logits, "float32") / temperature, axis=-1)


def teacher_probabilities(teacher_global, centers, teacher_temp):
    """softmax((t - c) / tau_t): (2, B, 1+L, K)."""
    return ops.softmax((ops.cast(teacher_global, "float32") - centers) / teacher_temp, axis=-1)


def pass_loss_terms(teacher_global, student_global, student_local, centers, teacher_temp, student_temp=0.1):
    """Sums and counts of the CLS and PART cross-entropy terms.

    Returns `(cls_sum, cls_count, part_sum, part_count)`; the loss is
    `(cls_sum + part_sum) / (cls_count + part_count)`.
    """
    num_parts, crops_per_part = student_local.shape[:2]
    q = teacher_probabilities(teacher_global, centers, teacher_temp)
    log_p_global = _log_softmax(student_global, student_temp)
    log_p_local = _log_softmax(student_local, student_temp)
    batch = ops.cast(ops.shape(q)[1], "float32")

    # Global student views against the OTHER teacher view, every token.
    cross = -ops.einsum("gbtk,vbtk->gvt", q, log_p_global) / batch
    swapped = cross[0, 1] + cross[1, 0]  # (1 + L,): g != v pairs only
    # Local crops: their CLS against the teacher CLS, their PART_i against PART_i.
    # unstack, not [..., 0]: a slice's gradient zero-fills the whole (L, J, B, 2, K) tensor
    log_p_local_cls, log_p_local_part = ops.unstack(log_p_local, axis=3)
    local_cls = -ops.einsum("gbk,ijbk->", q[:, :, 0], log_p_local_cls) / batch
    q_parts = ops.transpose(q[:, :, 1:], (0, 2, 1, 3))  # (2, L, B, K)
    local_parts = -ops.einsum("gibk,ijbk->", q_parts, log_p_local_part) / batch

    cls_sum = swapped[0] + local_cls
    part_sum = ops.sum(swapped[1:]) + local_parts
    cls_count = 2 + 2 * num_parts * crops_per_part
    part_count = num_parts * (2 + 2 * crops_per_part)
    return cls_sum, cls_count, part_sum, part_count


def dino_loss_terms(teacher_cls, student_global, student_local, center, teacher_temp, student_temp=0.1):
    """Sum and count of DINO's cross-entropy terms (`DINOLoss` of the release).

    Args:
        teacher_cls: teacher logits of the 2 global views, (2, B, K).
        student_global: student logits of the same views, (2, B, K).
        student_local: student logits of the V local crops, (V, B, K).
        center: (K,) or (1, K).
        teacher_temp, student_temp: tau_t, tau_s.

    Returns `(loss_sum, count)`: every teacher view g against every student
    view v != g (globals and locals alike), each term a batch mean.
    """
    q = ops.softmax((ops.cast(teacher_cls, "float32") - ops.reshape(center, (1, 1, -1))) / teacher_temp, axis=-1)
    log_p_global = _log_softmax(student_global, student_temp)
    log_p_local = _log_softmax(student_local, student_temp)
    batch = ops.cast(ops.shape(q)[1], "float32")
    cross = -ops.einsum("gbk,vbk->gv", q, log_p_global) / batch
    local = -ops.einsum("gbk,vbk->", q, log_p_local) / batch
    num_local = student_local.shape[0]
    return cross[0, 1] + cross[1, 0] + local, 2 + 2 * num_local


def pass_loss(teacher_global, student_global, student_local, centers, teacher_temp, student_temp=0.1):
    """The scalar PASS loss.

    Args:
        teacher_global: teacher head logits, (2, B, 1+L, K): global view,
            batch, token [CLS, PART_1..PART_L], prototype.
        student_global: student head logits of the same views, (2, B, 1+L, K).
        student_local: student logits of the local crops, (L, J, B, 2, K):
            region, crop, batch, token [CLS, PART_i], prototype.
        centers: (1+L, K), one center per token type.
        teacher_temp: tau_t (0.04 in the release).
        student_temp: tau_s (0.1).
    """
    cls_sum, cls_count, part_sum, part_count = pass_loss_terms(
        teacher_global, student_global, student_local, centers, teacher_temp, student_temp
    )
    return (cls_sum + part_sum) / (cls_count + part_count)


def batch_centers(teacher_global):
    """Mean teacher logits over both global views and the batch: (1+L, K)."""
    return ops.mean(ops.cast(teacher_global, "float32"), axis=(0, 1))


def update_centers(centers, teacher_global, momentum=0.9):
    """EMA of the centers towards this batch's mean teacher logits.

    No cross-replica reduction here: under a distribution strategy the
    trainer averages the result (the centers variable aggregates by mean).
    """
    return ops.add(ops.multiply(centers, momentum), batch_centers(teacher_global) * (1.0 - momentum))


def collapse_metrics(teacher_global, centers, teacher_temp):
    """Teacher entropy and KL(q || softmax(c / tau_t)), averaged over views,
    batch and tokens. Entropy near 0 means a one-hot collapse; KL near 0
    means the teacher output is the center's distribution (uniform
    collapse)."""
    q = teacher_probabilities(teacher_global, centers, teacher_temp)
    log_q = ops.log(ops.maximum(q, 1e-12))
    entropy = -ops.mean(ops.sum(q * log_q, axis=-1))
    log_center = ops.log_softmax(centers / teacher_temp, axis=-1)
    kl = ops.mean(ops.sum(q * (log_q - log_center), axis=-1))
    return entropy, kl
