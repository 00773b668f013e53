// SPDX-License-Identifier: GPL-2.0
/*
 * phsm.ko: driver of the phsm PCIe HSM card.  This part owns the PCI
 * function: probe and removal, the controller's enable and reset, the
 * interrupts, recovery, sysfs and the module.
 *
 * Documentation/phsm/driver.rst describes the driver, and
 * Documentation/phsm/device.rst the device it drives.
 */
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/idr.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/log2.h>
#include <linux/minmax.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "phsm.h"

#ifndef PCI_IRQ_INTX
#define PCI_IRQ_INTX	PCI_IRQ_LEGACY	/* renamed in Linux 6.8 */
#endif

unsigned int phsm_timeout_ms = 10000;

static int phsm_timeout_set(const char *val, const struct kernel_param *kp)
{
	unsigned int ms;
	int ret;

	ret = kstrtouint(val, 0, &ms);
	if (ret)
		return ret;
	if (!ms)
		return -EINVAL;
	WRITE_ONCE(*(unsigned int *)kp->arg, ms);
	return 0;
}

static const struct kernel_param_ops phsm_timeout_ops = {
	.set = phsm_timeout_set,
	.get = param_get_uint,
};

module_param_cb(timeout_ms, &phsm_timeout_ops, &phsm_timeout_ms, 0644);
MODULE_PARM_DESC(timeout_ms,
		 "Default command timeout in milliseconds, at least 1 (default 10000)");

static dev_t phsm_devt;
static DEFINE_IDA(phsm_ida);
static struct class phsm_class = {
	.name = "phsm",
};

static struct phsm_card *to_phsm_card(struct device *dev)
{
	return container_of(dev, struct phsm_card, dev);
}

/* sysfs: /sys/class/phsm/phsmN/ */

static ssize_t serial_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	struct phsm_card *card = to_phsm_card(dev);
	int len = sizeof(card->info.serial);

	while (len > 0 && (card->info.serial[len - 1] == ' ' ||
			   !card->info.serial[len - 1]))
		len--;
	return sysfs_emit(buf, "%.*s\n", len, card->info.serial);
}
static DEVICE_ATTR_RO(serial);

static ssize_t firmware_version_show(struct device *dev,
				     struct device_attribute *attr, char *buf)
{
	struct phsm_card *card = to_phsm_card(dev);

	return sysfs_emit(buf, "%u.%u\n", card->info.fw_major,
			  card->info.fw_minor);
}
static DEVICE_ATTR_RO(firmware_version);

static ssize_t queue_depth_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", to_phsm_card(dev)->q.nslots - 1);
}
static DEVICE_ATTR_RO(queue_depth);

static ssize_t commands_show(struct device *dev,
			     struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  atomic64_read(&to_phsm_card(dev)->commands));
}
static DEVICE_ATTR_RO(commands);

static ssize_t errors_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  atomic64_read(&to_phsm_card(dev)->errors));
}
static DEVICE_ATTR_RO(errors);

static ssize_t timeouts_show(struct device *dev,
			     struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  atomic64_read(&to_phsm_card(dev)->timeouts));
}
static DEVICE_ATTR_RO(timeouts);

static ssize_t resets_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  atomic64_read(&to_phsm_card(dev)->resets));
}
static DEVICE_ATTR_RO(resets);

static const char *const phsm_state_names[] = {
	[PHSM_LIVE] = "live",
	[PHSM_RESETTING] = "resetting",
	[PHSM_DEAD] = "dead",
	[PHSM_REMOVED] = "removed",
};

static ssize_t state_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	enum phsm_state state = READ_ONCE(to_phsm_card(dev)->state);

	return sysfs_emit(buf, "%s\n", phsm_state_names[state]);
}
static DEVICE_ATTR_RO(state);

static struct attribute *phsm_attrs[] = {
	&dev_attr_serial.attr,
	&dev_attr_firmware_version.attr,
	&dev_attr_queue_depth.attr,
	&dev_attr_commands.attr,
	&dev_attr_errors.attr,
	&dev_attr_timeouts.attr,
	&dev_attr_resets.attr,
	&dev_attr_state.attr,
	NULL,
};
ATTRIBUTE_GROUPS(phsm);

/* Controller */

/*
 * Wait until CSTS.RDY is @ready.  Enabling fails early on CSTS.CFS or a
 * recorded error (a refused queue configuration).
 */
static int phsm_wait_ready(struct phsm_card *card, bool ready)
{
	unsigned long end = jiffies + msecs_to_jiffies(card->ready_ms);

	for (;;) {
		u32 csts = phsm_readl(card, PHSM_REG_CSTS);

		if (csts == ~0u)
			return -ENODEV;
		if (ready && ((csts & PHSM_CSTS_CFS) ||
			      phsm_readl(card, PHSM_REG_ERR_CODE)))
			return -EIO;
		if (!!(csts & PHSM_CSTS_RDY) == ready)
			return 0;
		if (time_after(jiffies, end))
			return -ETIMEDOUT;
		usleep_range(1000, 2000);
	}
}

static int phsm_ctrl_disable(struct phsm_card *card)
{
	phsm_writel(card, PHSM_REG_CC, 0);
	return phsm_wait_ready(card, false);
}

static void phsm_log_dev_error(struct phsm_card *card, const char *when)
{
	u32 code = phsm_readl(card, PHSM_REG_ERR_CODE);

	if (!code || code == ~0u)
		return;
	atomic64_inc(&card->errors);
	dev_err(&card->dev, "%s: device error %#x (info %#x, %u recorded)\n",
		when, code, phsm_readl(card, PHSM_REG_ERR_INFO),
		phsm_readl(card, PHSM_REG_ERR_COUNT));
}

/*
 * Enable the controller on empty rings, make the card live and open the
 * driver's own context.  Under ctrl_lock, with the controller disabled.
 * Only the probe needs the context (for the card information); after a
 * reset, failing to open it is logged and the card stays live, since the
 * liveness probe counts any completion as a sign of life.
 */
static int phsm_ctrl_enable(struct phsm_card *card, bool need_ctx)
{
	u64 ctx = 0;
	int ret;

	phsm_queue_reset(card);
	/* A controller reset keeps these, a function reset clears them. */
	phsm_writel(card, PHSM_REG_QDEPTH, card->q.depth);
	phsm_writel(card, PHSM_REG_SQ_BASE_LO, lower_32_bits(card->q.sq_dma));
	phsm_writel(card, PHSM_REG_SQ_BASE_HI, upper_32_bits(card->q.sq_dma));
	phsm_writel(card, PHSM_REG_CQ_BASE_LO, lower_32_bits(card->q.cq_dma));
	phsm_writel(card, PHSM_REG_CQ_BASE_HI, upper_32_bits(card->q.cq_dma));
	phsm_writel(card, PHSM_REG_ERR_CODE, 0);
	phsm_writel(card, PHSM_REG_INTMC, PHSM_INT_ALL);
	phsm_writel(card, PHSM_REG_CC, PHSM_CC_EN);
	ret = phsm_wait_ready(card, true);
	if (ret) {
		phsm_log_dev_error(card, "enable");
		dev_err(&card->dev, "controller did not become ready (%d)\n",
			ret);
		return ret;
	}

	spin_lock(&card->q.lock);
	if (card->state == PHSM_RESETTING)
		card->state = PHSM_LIVE;
	spin_unlock(&card->q.lock);
	wake_up_all(&card->slot_wq);

	ret = phsm_ctx_open(card, NULL, &ctx);
	if (ret) {
		dev_err(&card->dev, "cannot open the driver's context (%d)\n",
			ret);
		if (need_ctx)
			return ret;
		ctx = 0;
	}
	spin_lock(&card->q.lock);
	card->own_ctx = ctx;
	spin_unlock(&card->q.lock);
	return 0;
}

static void phsm_set_state(struct phsm_card *card, enum phsm_state state)
{
	spin_lock(&card->q.lock);
	if (card->state != PHSM_REMOVED)
		card->state = state;
	spin_unlock(&card->q.lock);
}

/*
 * Stop the card for good: no DMA after this, every command fails with
 * @error, and every file sees the new state.
 */
static void phsm_kill(struct phsm_card *card, enum phsm_state state,
		      int error)
{
	phsm_set_state(card, state);
	phsm_wake_files(card);
	if (phsm_readl(card, PHSM_REG_ID) != ~0u)
		phsm_ctrl_disable(card);
	pci_clear_master(card->pdev);
	phsm_fail_all(card, error);
	phsm_wake_files(card);
}

void phsm_schedule_recovery(struct phsm_card *card)
{
	schedule_work(&card->recovery);
}

/*
 * Recovery: the card is gone (registers read all ones), or it needs a
 * controller reset (CSTS.CFS, CSTS.RDY lost, or it stopped answering).
 */
static void phsm_recovery_fn(struct work_struct *work)
{
	struct phsm_card *card = container_of(work, struct phsm_card,
					      recovery);
	int ret;

	mutex_lock(&card->ctrl_lock);
	spin_lock(&card->q.lock);
	if (card->state != PHSM_LIVE) {
		spin_unlock(&card->q.lock);
		goto out;
	}
	card->state = PHSM_RESETTING;
	card->gen++;
	spin_unlock(&card->q.lock);
	phsm_wake_files(card);

	if (phsm_readl(card, PHSM_REG_ID) == ~0u) {
		dev_err(&card->dev, "card is gone\n");
		phsm_kill(card, PHSM_REMOVED, -ENODEV);
		goto out;
	}

	atomic64_inc(&card->resets);
	dev_warn(&card->dev, "resetting the controller (status %#x)\n",
		 phsm_readl(card, PHSM_REG_CSTS));
	phsm_log_dev_error(card, "reset");
	ret = phsm_ctrl_disable(card);
	if (ret) {
		dev_err(&card->dev, "controller did not stop (%d)\n", ret);
		phsm_kill(card, ret == -ENODEV ? PHSM_REMOVED : PHSM_DEAD,
			  -ENODEV);
		goto out;
	}
	/* The device does no more DMA: the buffers can go. */
	phsm_fail_all(card, -EIO);
	ret = phsm_ctrl_enable(card, false);
	if (ret) {
		phsm_kill(card, ret == -ENODEV ? PHSM_REMOVED : PHSM_DEAD,
			  -ENODEV);
		goto out;
	}
	dev_info(&card->dev, "controller reset done\n");
out:
	mutex_unlock(&card->ctrl_lock);
}

/**
 * phsm_handle_dev_error - a device error was signalled: log it,
 * acknowledge it, and reset the controller if it is fatal
 * @card:	the card
 */
void phsm_handle_dev_error(struct phsm_card *card)
{
	u32 code, info, count, csts;

	spin_lock(&card->q.lock);
	if (card->state != PHSM_LIVE) {
		spin_unlock(&card->q.lock);
		return;
	}
	code = phsm_readl(card, PHSM_REG_ERR_CODE);
	if (code == ~0u || !code) {
		spin_unlock(&card->q.lock);
		if (code)
			phsm_schedule_recovery(card);
		return;
	}
	info = phsm_readl(card, PHSM_REG_ERR_INFO);
	count = phsm_readl(card, PHSM_REG_ERR_COUNT);
	phsm_writel(card, PHSM_REG_ERR_CODE, 0);
	csts = phsm_readl(card, PHSM_REG_CSTS);
	spin_unlock(&card->q.lock);

	atomic64_inc(&card->errors);
	dev_err_ratelimited(&card->dev,
			    "device error %#x (info %#x, %u recorded)\n",
			    code, info, count);
	if (code >= PHSM_ERR_FATAL_DMA || csts == ~0u ||
	    (csts & PHSM_CSTS_CFS))
		phsm_schedule_recovery(card);
}

/* Interrupts */

static irqreturn_t phsm_irq_cq(int irq, void *data)
{
	phsm_process_cq(data);
	return IRQ_HANDLED;
}

static irqreturn_t phsm_irq_err(int irq, void *data)
{
	phsm_handle_dev_error(data);
	return IRQ_HANDLED;
}

/* One vector for both causes (MSI or INTx): ISR says which. */
static irqreturn_t phsm_irq_both(int irq, void *data)
{
	struct phsm_card *card = data;
	u32 isr = phsm_readl(card, PHSM_REG_ISR);

	if (isr == ~0u)
		return IRQ_HANDLED;
	if (isr & PHSM_INT_ERR)
		phsm_handle_dev_error(card);
	phsm_process_cq(card);
	return IRQ_HANDLED;
}

/* INTx may be shared: is it ours? */
static irqreturn_t phsm_irq_check(int irq, void *data)
{
	struct phsm_card *card = data;
	u32 isr = phsm_readl(card, PHSM_REG_ISR);

	if (isr == ~0u || !(isr & PHSM_INT_ALL))
		return IRQ_NONE;
	return IRQ_WAKE_THREAD;
}

static int phsm_setup_irqs(struct phsm_card *card)
{
	struct pci_dev *pdev = card->pdev;
	const char *name = dev_name(&card->dev);
	unsigned long flags = IRQF_ONESHOT;
	irq_handler_t check = NULL;
	int ret;

	ret = pci_alloc_irq_vectors(pdev, PHSM_MSIX_VECS, PHSM_MSIX_VECS,
				    PCI_IRQ_MSIX);
	if (ret == PHSM_MSIX_VECS) {
		card->nvecs = PHSM_MSIX_VECS;
		ret = devm_request_threaded_irq(&pdev->dev,
						pci_irq_vector(pdev, PHSM_MSIX_VEC_CQ),
						NULL, phsm_irq_cq, IRQF_ONESHOT,
						name, card);
		if (ret)
			return ret;
		return devm_request_threaded_irq(&pdev->dev,
						 pci_irq_vector(pdev, PHSM_MSIX_VEC_ERR),
						 NULL, phsm_irq_err,
						 IRQF_ONESHOT, name, card);
	}

	ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI | PCI_IRQ_INTX);
	if (ret < 0)
		return ret;
	card->nvecs = 1;
	if (!pdev->msi_enabled) {
		flags |= IRQF_SHARED;
		check = phsm_irq_check;
	}
	return devm_request_threaded_irq(&pdev->dev, pci_irq_vector(pdev, 0),
					 check, phsm_irq_both, flags, name,
					 card);
}

/* Probe */

static int phsm_read_card_info(struct phsm_card *card)
{
	const u32 want = PHSM_HDR_LEN + sizeof(struct phsm_field) +
			 sizeof(struct phsm_card_info);
	const struct phsm_msg_hdr *hdr;
	const struct phsm_field *field;
	u32 resp_len;
	u8 *resp;
	int ret;

	resp = kzalloc(2 * want, GFP_KERNEL);
	if (!resp)
		return -ENOMEM;
	ret = phsm_exec_own_msg(card, PHSM_OP_GET_CARD_INFO, resp, 2 * want,
				&resp_len);
	if (ret)
		goto out;
	hdr = (const struct phsm_msg_hdr *)resp;
	field = (const struct phsm_field *)(resp + PHSM_HDR_LEN);
	ret = -EIO;
	if (resp_len != want || le32_to_cpu(hdr->magic) != PHSM_PROTO_MAGIC ||
	    le32_to_cpu(hdr->length) != resp_len ||
	    le16_to_cpu(hdr->opcode) != PHSM_OP_GET_CARD_INFO ||
	    !(le32_to_cpu(hdr->flags) & PHSM_MSG_F_RESPONSE) ||
	    hdr->status || hdr->rv ||
	    le16_to_cpu(field->type) != PHSM_FT_BYTES ||
	    le32_to_cpu(field->len) != sizeof(struct phsm_card_info)) {
		dev_err(&card->dev, "malformed card information (%u bytes)\n",
			resp_len);
		goto out;
	}
	memcpy(&card->info, field + 1, sizeof(card->info));
	ret = 0;
out:
	kfree(resp);
	return ret;
}

/* Read and check what the card says about itself. */
static int phsm_read_caps(struct phsm_card *card)
{
	struct device *dev = &card->pdev->dev;
	u32 id, mqes, max_msg;

	id = phsm_readl(card, PHSM_REG_ID);
	if (id != PHSM_DEV_ID_MAGIC) {
		dev_err(dev, "not a phsm card (ID %#x)\n", id);
		return -ENODEV;
	}
	card->dev_version = phsm_readl(card, PHSM_REG_VERSION);
	if (PHSM_DEV_VERSION_MAJ(card->dev_version) != PHSM_DEV_VERSION_MAJOR) {
		dev_err(dev, "unsupported interface version %u.%u\n",
			PHSM_DEV_VERSION_MAJ(card->dev_version),
			PHSM_DEV_VERSION_MIN(card->dev_version));
		return -ENODEV;
	}
	card->cap = phsm_readl(card, PHSM_REG_CAP);
	card->ready_ms = max_t(u32, PHSM_CAP_TO(card->cap), 1) * PHSM_CAP_TO_MS;
	mqes = PHSM_CAP_MQES(card->cap);
	max_msg = phsm_readl(card, PHSM_REG_MAX_MSG);
	card->max_ctx = phsm_readl(card, PHSM_REG_MAX_CTX);
	card->proto = phsm_readl(card, PHSM_REG_PROTO);

	if (mqes < 4 || max_msg < 4096 || card->max_ctx < 2 ||
	    PHSM_REG_PROTO_MIN(card->proto) > PHSM_PROTO_VERSION ||
	    PHSM_REG_PROTO_MAX(card->proto) < PHSM_PROTO_VERSION) {
		dev_err(dev, "unusable card: CAP %#x MAX_MSG %u MAX_CTX %u PROTO %#x\n",
			card->cap, max_msg, card->max_ctx, card->proto);
		return -ENODEV;
	}
	card->max_msg = min(max_msg, PHSM_DRV_MAX_MSG);
	card->q.depth = rounddown_pow_of_two(min_t(u32, mqes,
						   PHSM_DRV_MAX_QDEPTH));
	card->q.nslots = card->q.depth - 1;
	return 0;
}

static int phsm_setup_rings(struct phsm_card *card)
{
	struct device *dev = &card->pdev->dev;
	struct phsm_queue *q = &card->q;

	q->sqes = dmam_alloc_coherent(dev, q->depth * sizeof(*q->sqes),
				      &q->sq_dma, GFP_KERNEL);
	q->cqes = dmam_alloc_coherent(dev, q->depth * sizeof(*q->cqes),
				      &q->cq_dma, GFP_KERNEL);
	if (!q->sqes || !q->cqes)
		return -ENOMEM;
	if ((q->sq_dma | q->cq_dma) & (PHSM_RING_ALIGN - 1))
		return -ENOMEM;
	return 0;
}

/* Bring the card up, in the order of device.rst "Initialisation". */
static int phsm_hw_init(struct phsm_card *card)
{
	struct pci_dev *pdev = card->pdev;
	struct resource *bar = &pdev->resource[PHSM_BAR_REGS];
	void __iomem *regs;
	int ret;

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	pci_set_master(pdev);
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	if (!(resource_type(bar) & IORESOURCE_MEM) ||
	    resource_size(bar) < PHSM_BAR0_SIZE)
		return -ENODEV;
	regs = devm_ioremap_resource(&pdev->dev, bar);
	if (IS_ERR(regs))
		return PTR_ERR(regs);
	card->regs = regs;

	ret = phsm_read_caps(card);
	if (ret)
		return ret;
	if ((phsm_readl(card, PHSM_REG_CC) & PHSM_CC_EN) ||
	    (phsm_readl(card, PHSM_REG_CSTS) & PHSM_CSTS_RDY)) {
		ret = phsm_ctrl_disable(card);
		if (ret) {
			dev_err(&pdev->dev, "controller did not stop (%d)\n",
				ret);
			return ret;
		}
	}
	phsm_log_dev_error(card, "probe");
	phsm_writel(card, PHSM_REG_ERR_CODE, 0);

	ret = phsm_setup_rings(card);
	if (ret)
		return ret;
	card->ping = phsm_ping_alloc();
	if (!card->ping)
		return -ENOMEM;
	ret = phsm_setup_irqs(card);
	if (ret)
		return ret;

	mutex_lock(&card->ctrl_lock);
	ret = phsm_ctrl_enable(card, true);
	mutex_unlock(&card->ctrl_lock);
	if (ret)
		return ret;
	return phsm_read_card_info(card);
}

/* Stop the controller and fail what is left; the card must not be live. */
static void phsm_quiesce(struct phsm_card *card)
{
	if (phsm_readl(card, PHSM_REG_ID) != ~0u)
		phsm_ctrl_disable(card);
	pci_clear_master(card->pdev);
	phsm_fail_all(card, -ENODEV);
	cancel_work_sync(&card->recovery);
	cancel_delayed_work_sync(&card->watchdog);
	phsm_fail_all(card, -ENODEV);
}

static void phsm_card_release(struct device *dev)
{
	struct phsm_card *card = to_phsm_card(dev);

	if (card->ping)
		phsm_cmd_put(card->ping);
	ida_free(&phsm_ida, card->minor);
	pci_dev_put(card->pdev);
	kfree(card);
}

/*
 * The probe's reference to the card, dropped by devres after everything
 * registered later (the interrupts above all) is gone.
 */
static void phsm_card_put(void *data)
{
	struct phsm_card *card = data;

	put_device(&card->dev);
}

static int phsm_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct phsm_card *card;
	int ret;

	card = kzalloc(sizeof(*card), GFP_KERNEL);
	if (!card)
		return -ENOMEM;
	card->minor = ida_alloc_max(&phsm_ida, PHSM_DRV_MAX_CARDS - 1,
				    GFP_KERNEL);
	if (card->minor < 0) {
		ret = card->minor;
		kfree(card);
		return ret;
	}
	card->pdev = pci_dev_get(pdev);
	device_initialize(&card->dev);
	card->dev.class = &phsm_class;
	card->dev.parent = &pdev->dev;
	card->dev.devt = MKDEV(MAJOR(phsm_devt), card->minor);
	card->dev.groups = phsm_groups;
	card->dev.release = phsm_card_release;

	mutex_init(&card->ctrl_lock);
	spin_lock_init(&card->q.lock);
	init_waitqueue_head(&card->slot_wq);
	INIT_LIST_HEAD(&card->files);
	spin_lock_init(&card->files_lock);
	INIT_DELAYED_WORK(&card->watchdog, phsm_watchdog_fn);
	INIT_WORK(&card->recovery, phsm_recovery_fn);
	card->state = PHSM_RESETTING;
	card->next_ctx = 1;
	cdev_init(&card->cdev, &phsm_fops);
	card->cdev.owner = THIS_MODULE;
	pci_set_drvdata(pdev, card);

	ret = devm_add_action_or_reset(&pdev->dev, phsm_card_put, card);
	if (ret)
		return ret;
	ret = dev_set_name(&card->dev, "phsm%d", card->minor);
	if (ret)
		return ret;
	ret = phsm_hw_init(card);
	if (ret)
		goto stop;
	ret = cdev_device_add(&card->cdev, &card->dev);
	if (ret)
		goto stop;

	dev_info(&card->dev,
		 "%s: interface %u.%u, firmware %u.%u, %u commands, %u-byte messages, %s\n",
		 pci_name(pdev), PHSM_DEV_VERSION_MAJ(card->dev_version),
		 PHSM_DEV_VERSION_MIN(card->dev_version), card->info.fw_major,
		 card->info.fw_minor, card->q.nslots - 1, card->max_msg,
		 card->nvecs == PHSM_MSIX_VECS ? "MSI-X" :
		 pdev->msi_enabled ? "MSI" : "INTx");
	return 0;

stop:
	phsm_set_state(card, PHSM_REMOVED);
	if (card->regs)
		phsm_quiesce(card);
	return ret;
}

static void phsm_remove(struct pci_dev *pdev)
{
	struct phsm_card *card = pci_get_drvdata(pdev);

	phsm_set_state(card, PHSM_REMOVED);
	phsm_wake_files(card);
	cdev_device_del(&card->cdev, &card->dev);
	phsm_quiesce(card);
	phsm_wake_files(card);
}

static void phsm_shutdown(struct pci_dev *pdev)
{
	struct phsm_card *card = pci_get_drvdata(pdev);

	phsm_set_state(card, PHSM_REMOVED);
	phsm_wake_files(card);
	phsm_quiesce(card);
}

/*
 * A function reset (e.g. through /sys/bus/pci/devices/.../reset): stop
 * the controller before, start it again after.  Like a controller reset,
 * it ends every command and every application context.
 */
static void phsm_reset_prepare(struct pci_dev *pdev)
{
	struct phsm_card *card = pci_get_drvdata(pdev);

	mutex_lock(&card->ctrl_lock);
	spin_lock(&card->q.lock);
	if (card->state != PHSM_LIVE) {
		spin_unlock(&card->q.lock);
		goto out;
	}
	card->state = PHSM_RESETTING;
	card->gen++;
	spin_unlock(&card->q.lock);
	phsm_wake_files(card);
	atomic64_inc(&card->resets);
	dev_info(&card->dev, "function reset\n");
	if (phsm_ctrl_disable(card))
		pci_clear_master(pdev);
	phsm_fail_all(card, -EIO);
out:
	mutex_unlock(&card->ctrl_lock);
}

static void phsm_reset_done(struct pci_dev *pdev)
{
	struct phsm_card *card = pci_get_drvdata(pdev);
	int ret;

	mutex_lock(&card->ctrl_lock);
	if (READ_ONCE(card->state) == PHSM_RESETTING) {
		pci_set_master(pdev);
		ret = phsm_ctrl_enable(card, false);
		if (ret)
			phsm_kill(card, ret == -ENODEV ? PHSM_REMOVED :
				  PHSM_DEAD, -ENODEV);
	}
	mutex_unlock(&card->ctrl_lock);
}

static const struct pci_error_handlers phsm_err_handlers = {
	.reset_prepare = phsm_reset_prepare,
	.reset_done = phsm_reset_done,
};

static const struct pci_device_id phsm_pci_ids[] = {
	{ PCI_DEVICE(PHSM_PCI_VENDOR_ID, PHSM_PCI_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, phsm_pci_ids);

static struct pci_driver phsm_pci_driver = {
	.name = "phsm",
	.id_table = phsm_pci_ids,
	.probe = phsm_probe,
	.remove = phsm_remove,
	.shutdown = phsm_shutdown,
	.err_handler = &phsm_err_handlers,
};

static int __init phsm_init(void)
{
	int ret;

	ret = alloc_chrdev_region(&phsm_devt, 0, PHSM_DRV_MAX_CARDS, "phsm");
	if (ret)
		return ret;
	ret = class_register(&phsm_class);
	if (ret)
		goto unregister_region;
	ret = pci_register_driver(&phsm_pci_driver);
	if (ret)
		goto unregister_class;
	return 0;

unregister_class:
	class_unregister(&phsm_class);
unregister_region:
	unregister_chrdev_region(phsm_devt, PHSM_DRV_MAX_CARDS);
	return ret;
}

static void __exit phsm_exit(void)
{
	pci_unregister_driver(&phsm_pci_driver);
	class_unregister(&phsm_class);
	unregister_chrdev_region(phsm_devt, PHSM_DRV_MAX_CARDS);
}

module_init(phsm_init);
module_exit(phsm_exit);

MODULE_DESCRIPTION("phsm PCIe HSM card");
MODULE_LICENSE("GPL");
